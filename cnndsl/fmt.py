"""`cnndsl fmt`: one canonical layout for a spec, and `--annotate`, which writes the checked shapes.

The formatter keeps the author's line breaks and comments and changes only the blank space: indentation
(two spaces per open bracket line; branch bodies one step further so that `|` lines up under them),
spacing around `->`, `|`, `=`, `,` and `:`, trailing comments aligned in each run of code lines, at most
one blank line in a row. As black does, it proves it changed nothing: the tokens of the result are the
tokens of the input, else it raises (an internal error, never a silently different spec).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import ast, syntax
from .diagnostics import CompileError
from .util import fmt_shape

KEYWORDS = {"network", "input", "defaults", "import", "output", "block", "residual", "shortcut", "repeat", "fn", "let",
            "for", "in", "if", "elif", "else", "and", "or", "not"}
OPERATORS = {"+", "-", "*", "/", "//", "%", "**"}
COMPARE = {"==", "!=", "<=", ">=", "<", ">"}
OPEN, CLOSE = "({[", ")}]"
COMMENT_GAP = 3  # spaces between the longest code line of a run and its aligned comments

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<nl>\r?\n)
  | (?P<ws>[ \t\f\r]+)
  | (?P<string>"[^"\n]*")
  | (?P<size>[0-9]+(?:x[0-9]+)+)
  | (?P<float>[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|\.[0-9]+(?:[eE][-+]?[0-9]+)?)
  | (?P<int>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<arrow>->|==|!=|<=|>=|//|\*\*)
  | (?P<punct>[{}()\[\]|,=+\-*/:%<>])
  | (?P<other>.)
""", re.VERBOSE)


@dataclass
class _Line:
    tokens: list[str]  # code tokens, blank space dropped
    comment: str | None  # the trailing (or whole-line) comment, as written


def _lines(text: str) -> list[_Line]:
    lines, cur, comment = [], [], None
    for m in _TOKEN.finditer(text):
        kind, tok = m.lastgroup, m.group()
        if kind == "nl":
            lines.append(_Line(cur, comment))
            cur, comment = [], None
        elif kind == "comment":
            comment = tok.rstrip()
        elif kind != "ws":
            cur.append(tok)
    lines.append(_Line(cur, comment))
    return lines


def _is_word(t: str) -> bool:
    return t[:1].isalnum() or t[:1] in "_\".x"


def _join(tokens: list[str]) -> str:
    """One line's code tokens with the canonical spacing: `f=5` tight; a statement's `=` (`x = ...`,
    `let x = ...`, `fn f(v) = ...`), `->`, `|`, `:` and comparisons spaced; arithmetic tight in a layer's
    arguments (`n=n*4`) and spaced inside brackets (`repeat (n - 1)`); a unary minus tight."""
    out: list[str] = []
    depth = 0
    starts_def = bool(tokens) and tokens[0] in ("let", "fn")
    for i, t in enumerate(tokens):
        if i == 0:
            out.append(t)
            depth += t in "(["
            continue
        a = tokens[i - 1]
        unary = t == "-" and (i == 1 or a in OPERATORS or a in COMPARE or a in KEYWORDS or a in
                              ("(", "[", ",", "=", ":", "->", "|", "{"))
        after_unary = a == "-" and (i == 1 or tokens[i - 2] in OPERATORS or tokens[i - 2] in COMPARE or
                                    tokens[i - 2] in KEYWORDS or tokens[i - 2] in ("(", "[", ",", "=", ":", "->",
                                                                                     "|", "{"))
        statement_eq = depth == 0 and (i == 1 or starts_def)
        if t == "=" or a == "=":
            spaced = t == "=" and statement_eq or a == "=" and depth == 0 and (i == 2 or starts_def) and \
                tokens[i - 2] != "=" and _is_statement_eq(tokens, i - 1)
            tight = not spaced
        elif after_unary:
            tight = True
        elif t in (",", ")", "]") or a in ("(", "["):
            tight = True
        elif t in COMPARE or a in COMPARE:
            tight = False
        elif t in ("//", "%", "**") or a in ("//", "%", "**"):
            tight = False
        elif (t in OPERATORS and not unary) or a in OPERATORS:
            tight = depth == 0 and not starts_def and a not in KEYWORDS and a not in (",", ":", "->", "|", "{")
        elif unary:
            tight = a in ("(", "[")
        elif t == "(" and _is_word(a) and a not in KEYWORDS:
            tight = True  # a call: `bottleneck(64)`
        else:
            tight = False
        out.append(t if tight else " " + t)
        if t in "([":  # arithmetic is spaced inside parentheses and lists, not inside a `{ }` body
            depth += 1
        elif t in ")]" and depth:
            depth -= 1
    return "".join(out)


def _is_statement_eq(tokens: list[str], i: int) -> bool:
    """Is the `=` at tokens[i] a statement's (`x = `, `let x = `, `fn f(v) = `) rather than a parameter's?"""
    if i == 1:
        return True
    if tokens[0] == "let":
        return i == 2
    if tokens[0] == "fn":
        depth = 0
        for t in tokens[:i]:
            depth += t in OPEN
            depth -= t in CLOSE
        return depth == 0 and tokens[i - 1] == ")"
    return False


def _branch_brace(tokens: list[str], i: int) -> bool:
    """Is the `{` at tokens[i] the body of a merge over branches (`concat {`), not a block/residual/repeat?"""
    if i < 1 or not tokens[i - 1][:1].isalpha() and tokens[i - 1][:1] != "_":
        return False
    if tokens[i - 1] in KEYWORDS:
        return False
    # the merge's name starts its element: `concat {`, `-> add {`, `x = concat {` (not `for c in table {`)
    return i == 1 or tokens[i - 2] in ("->", "|", "=", "{", "(", ",")


def format_text(text: str, path: str = "<spec>") -> str:
    """The canonical layout of a spec. Raises CompileError if it does not parse (nothing to format)."""
    syntax.parse(text, path)  # a spec that does not parse is reported, not guessed at
    lines = _lines(text.replace("\r\n", "\n"))
    stack: list[tuple[int, bool]] = []  # open brackets: (line index, is a branch brace)
    laid: list[tuple[str, str | None]] = []  # (indented code, comment) per line; ("", None) is blank
    prev_code: list[str] = []
    for li, line in enumerate(lines):
        toks = line.tokens
        if not toks and line.comment is None:
            laid.append(("", None))
            continue
        closers = 0
        while closers < len(toks) and toks[closers] in CLOSE and closers < len(stack):
            closers += 1
        open_now = stack[: len(stack) - closers]
        levels = len({ln for ln, _ in open_now})
        indent = 2 * levels
        in_branches = bool(open_now) and open_now[-1][1] and closers == 0
        if in_branches:
            indent += 2
            if toks and toks[0] == "|":
                indent -= 2
        if toks and (toks[0] == "->" or (prev_code and prev_code[-1] in ("->", "=") and toks[0] not in CLOSE)):
            indent += 2  # a chain continued, or the value of `fn f(v) =` on the next line
        for i, t in enumerate(toks):
            if t in OPEN:
                stack.append((li, t == "{" and _branch_brace(toks, i)))
            elif t in CLOSE and stack:
                stack.pop()
        code = " " * indent + _join(toks) if toks else ""
        comment = line.comment if not toks else line.comment
        if not toks:
            code = " " * indent
        laid.append((code, comment))
        if toks:
            prev_code = toks
    out = _align(laid)
    result = "\n".join(out).strip("\n") + "\n" if any(c.strip() or m for c, m in laid) else ""
    if _signature(result) != _signature(text):  # pragma: no cover - a bug in the formatter, never shipped
        raise AssertionError(f"cnndsl fmt would change the tokens of {path}")
    return result


def _align(laid: list[tuple[str, str | None]]) -> list[str]:
    """Trailing comments of each run of consecutive code lines start in one column; blank runs shrink to one."""
    out: list[str] = []
    run: list[tuple[str, str | None]] = []

    def flush():
        width = max((len(c) for c, m in run if m), default=0)
        for c, m in run:
            out.append(f"{c.ljust(width + COMMENT_GAP)}{m}" if m else c)
        run.clear()

    for code, comment in laid:
        if code.strip():
            run.append((code, comment))
            continue
        flush()
        if comment is not None:
            out.append(f"{code}{comment}")
        elif out and out[-1] != "":
            out.append("")
    flush()
    while out and out[-1] == "":
        out.pop()
    return out


def _signature(text: str) -> list[str]:
    """What the formatter must keep: every token, comment and line break (blank lines aside)."""
    sig: list[str] = []
    for m in _TOKEN.finditer(text.replace("\r\n", "\n")):
        kind, tok = m.lastgroup, m.group()
        if kind == "ws":
            continue
        if kind == "nl":
            if sig and sig[-1] != "\n":
                sig.append("\n")
            continue
        sig.append(tok.rstrip() if kind == "comment" else tok)
    while sig and sig[-1] == "\n":
        sig.pop()
    return sig


# --- annotations -------------------------------------------------------------------------------


def _offsets(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _annotated_spans(stmts, out: list) -> None:
    """Every `: shape` in the statements, nested bodies included."""
    from .editing import _walk

    els: list = []
    _walk(stmts, els)
    out.extend(el.shape_span for el in els if isinstance(el, ast.Annotated))


def annotate_text(text: str, path: str = "<spec>", input_shape=None) -> str:
    """Write `: HxWxC` after the last element of every top-level statement, and refresh every annotation
    already written (one inside a block is refreshed when all its calls agree). Then format.

    Raises CompileError if the spec has errors other than wrong annotations."""
    from . import ir, passes
    from .diagnostics import Span, error

    prog = syntax.parse(text, path)
    starts = _offsets(text)
    pos = lambda line, col: starts[line - 1] + col - 1  # noqa: E731

    edits: list[tuple[int, int, str]] = []  # (start, end, text) in the original
    for s in prog.stmts:
        if isinstance(s, (ast.Assign, ast.ChainStmt)):
            last = s.chain.elements[-1]
            if not isinstance(last, ast.Annotated) and not (isinstance(last, ast.Layer) and last.name == "input"):
                at = pos(last.span.end_line, last.span.end_col)
                edits.append((at, at, " : 0"))  # a placeholder, refreshed below
    probe = text
    for start, end, new in sorted(edits, reverse=True):
        probe = probe[:start] + new + probe[end:]
    prog = syntax.parse(probe, path)
    sources = {path: probe}
    try:
        g, diags = ir.build(prog, sources, input_shape)
        shapes, shape_diags = passes.infer_shapes(g) if g.graph["input"] else ({}, [])
    except RecursionError:
        raise CompileError([error("too-deep", "the spec is nested too deeply to compile", Span(path, 1, 1, 1, 2),
                                  help="flatten the nesting of blocks, branches or parentheses")], sources) from None
    errors = [d for d in diags + shape_diags if d.severity == "error"]
    if errors:
        raise CompileError(errors, sources)
    if not g.graph["input"]:
        raise CompileError([error("missing-input", "the spec does not declare its input", None)], sources)
    found: dict = {}
    for n, _dims, span, _calls in g.graph["annotations"]:
        if n in shapes and span.file == path:
            found.setdefault((span.line, span.col, span.end_col), set()).add(fmt_shape(shapes[n]))
    spans: list = []
    _annotated_spans(prog.stmts, spans)
    starts = _offsets(probe)
    out = probe
    for sp in sorted(spans, key=lambda s: (s.line, s.col), reverse=True):
        got = found.get((sp.line, sp.col, sp.end_col))
        if got and len(got) == 1:
            a, b = pos(sp.line, sp.col), pos(sp.end_line, sp.end_col)
            out = out[:a] + got.pop() + out[b:]
    out = out.replace(" : 0", "")  # a placeholder no expansion reached (a layer that was left out)
    return format_text(out, path)
