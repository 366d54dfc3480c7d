# Shortcuts for ./dev, which holds the set-up logic (it needs only Python 3 and pip, not make).
#   make demo | test | test-full | bench | docs | zoo-docs | lint | install | dot | clean
.PHONY: demo test test-full bench docs zoo-docs lint install dot clean
demo test test-full bench docs zoo-docs lint install dot clean:
	./dev $@
