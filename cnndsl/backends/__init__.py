"""Backends: turn a checked Model into something else (summary text/JSON, ONNX, Graphviz). They read
the graph and its attributes only; none of them parses or re-checks a spec."""
