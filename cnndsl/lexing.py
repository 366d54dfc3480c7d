"""Lark's contextual lexer, made as the parse needs it: the same tokens and errors, a fraction of the start-up.

Lark's `ContextualLexer` makes one `BasicLexer` per parser state (76 distinct ones for cnndsl's grammar)
when the parser is loaded, and each compiles its own scanner, one regular expression alternating over the
terminals that state accepts, the first time the parse reaches it: 30 to 40 compiles in a typical `check`,
a tenth of the command's time. `LazyContextualLexer` (given to lark as its `ContextualLexer` plugin, see
cnndsl.syntax) makes a state's lexer when the parser first reaches the state, and lets it answer from one
scanner shared by all states, the root lexer's, whenever that answer is provably its own:

- a scanner tries its terminals in one global order (priority, then length, then name) and returns the first
  that matches; a state's scanner holds a subset of the terminals, in the same order;
- so when every terminal of the state's scanner is also in the root's, and the root's first match is a
  terminal of the state's scanner, no terminal before it in the state's order matched (each was tried by the
  root first), and the state's scanner would have returned the same terminal and the same text;
- keywords that the name pattern also matches are then re-typed by the state's own callbacks, as lark does.

Anything else (a state whose scanner holds a terminal the root's does not, a match the state does not
accept, no match) asks the state's own scanner, compiled then, so errors come from lark's own code path.
tests/test_language_values.py compares the tokens and the trees with lark's own lexer on every spec.
"""

from __future__ import annotations

from copy import copy

from lark.lexer import BasicLexer, ContextualLexer, Scanner, _create_unless


class _StateLexer(BasicLexer):
    """One parser state's lexer: lark's BasicLexer, asking the shared root scanner first."""

    def __init__(self, conf, root: BasicLexer) -> None:
        super().__init__(conf)
        self.root = root
        self._own: list | None = None  # the terminals of its own scanner, once its callbacks are made
        self._fast: frozenset[str] = frozenset()  # the root's answers it may take as its own

    def _prepare(self) -> None:
        terminals, self.callback = _create_unless(self.terminals, self.g_regex_flags, self.re, self.use_bytes)
        for type_, f in self.user_callbacks.items():  # as BasicLexer._build_scanner
            if type_ in self.callback:
                from lark.lexer import CallChain

                self.callback[type_] = CallChain(self.callback[type_], f, lambda t, type_=type_: t.type == type_)
            else:
                self.callback[type_] = f
        own = frozenset(t.name for t in terminals)
        self._own = terminals
        self._fast = own if own <= _root_names(self.root) else frozenset()

    def _build_scanner(self) -> Scanner:
        if self._own is None:
            self._prepare()
        return Scanner(self._own, self.g_regex_flags, self.re, self.use_bytes)

    def match(self, text, pos):
        if self._own is None:
            self._prepare()
        if self._fast:
            res = self.root.scanner.match(text, pos)
            if res is not None and res[1] in self._fast:
                return res
        return self.scanner.match(text, pos)


def _root_names(root: BasicLexer) -> frozenset[str]:
    names = getattr(root, "_scanner_names", None)
    if names is None:
        names = root._scanner_names = frozenset(t.name for t in root.scanner.terminals)
    return names


class _Lexers(dict):
    """state -> its lexer, made on first use (lark's ContextualLexer.lex reads `self.lexers[state]`)."""

    def __init__(self, owner: LazyContextualLexer) -> None:
        super().__init__()
        self.owner = owner

    def __missing__(self, state: int) -> _StateLexer:
        lexer = self[state] = self.owner._lexer_for(state)
        return lexer


class LazyContextualLexer(ContextualLexer):
    """lark's ContextualLexer, with its per-state lexers made on first use and sharing the root's scanner."""

    def __init__(self, conf, states, always_accept=()) -> None:  # noqa: D107 - see the class
        terminals = list(conf.terminals)
        trad_conf = copy(conf)
        trad_conf.terminals = terminals
        self._trad_conf = trad_conf
        self._states = states
        self._always_accept = always_accept
        self._by_tokens: dict[frozenset[str], _StateLexer] = {}
        self.lexers = _Lexers(self)
        self.root_lexer = BasicLexer(trad_conf)  # validates every terminal when the grammar is new, as lark does
        self._state_conf = copy(trad_conf)
        self._state_conf.skip_validation = True

    def _lexer_for(self, state: int) -> _StateLexer:
        accepts = self._states[state]
        key = frozenset(accepts)
        lexer = self._by_tokens.get(key)
        if lexer is None:
            conf = self._state_conf
            names = set(accepts) | set(conf.ignore) | set(self._always_accept)
            by_name = conf.terminals_by_name
            lexer_conf = copy(conf)
            lexer_conf.terminals = [by_name[n] for n in names if n in by_name]
            lexer = self._by_tokens[key] = _StateLexer(lexer_conf, self.root_lexer)
        return lexer
