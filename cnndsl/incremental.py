"""Incremental parsing for editors: reparse only the statements an edit changed.

A spec is a list of statements separated by new lines, so an edit usually changes one statement and
shifts the lines of the ones after it. `Reparser.parse(text, file)` cuts the text into chunks of whole
top-level statements (`chunks`), parses each chunk it has not seen before with the one parser
(cnndsl.syntax.parse), and reuses the statements of the others, their spans moved to the lines where
they now stand. The result is the Program `syntax.parse` gives for the whole text, equal field for
field (tests/test_incremental.py checks it on generated edits); a text that does not parse as chunks,
or whose chunks fail, is parsed whole, so every syntax error is the one `check` reports.

Why cutting is safe: the parser joins lines only through punctuation (`->`, `|`, `,` on both sides,
`{ ( [` after, `} ) ]` before, `=` after `fn ... =`) and inside brackets. A cut is made only where
the brackets are balanced, the code above does not end with a joining token and the line below does
not start with one; there the whole-text parser sees exactly one `_NL` between two statements, and the
chunks' statements, in order, are its statements. A cut made where that does not hold leaves a chunk
that does not parse, and the whole text is parsed instead.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import threading

from . import ast, syntax
from .diagnostics import CompileError, Span

_STRING_OR_COMMENT = re.compile(r'"[^"\n]*"|#.*')
_BRACKETS = str.maketrans("", "", "".join(chr(c) for c in range(128) if chr(c) not in "()[]{}"))
_JOIN_END = ("->", "|", ",", "{", "(", "[", "=")
_JOIN_START = ("->", "|", ",", "}", ")", "]")


def _code(line: str) -> str:
    """The line without its comment (a `#` inside a quoted path is not one), stripped."""
    if "#" in line:
        line = _STRING_OR_COMMENT.sub(lambda m: m.group() if m.group()[0] == '"' else "", line)
    return line.strip()


def chunks(text: str) -> list[tuple[int, str]]:
    """Cut the text into runs of whole statements: [(first line, 0-based; chunk text)], in order, whose
    texts joined by new lines are the text. Blank and comment lines stay with the statement above."""
    lines = text.split("\n")
    out: list[tuple[int, str]] = []
    start = 0
    depth = 0
    last = ""  # the last line with code, for its final token
    for i, line in enumerate(lines):
        code = _code(line)
        if not code:
            continue
        if i > start and depth == 0 and not last.endswith(_JOIN_END) and not code.startswith(_JOIN_START):
            out.append((start, "\n".join(lines[start:i])))
            start = i
        brackets = code.translate(_BRACKETS) if any(b in code for b in "()[]{}") else ""
        for ch in brackets:
            depth += 1 if ch in "([{" else -1
        if depth < 0:  # more closed than opened: leave it to the parser (it reports this)
            return [(0, text)]
        last = code
    out.append((start, "\n".join(lines[start:])))
    return out


# --- moving spans ----------------------------------------------------------------------------------

_PLAIN = {str, int, float, bool, type(None)}
_PLAIN_FIELDS = {"str", "bool", "int", "int | float", "tuple[int, ...]"}  # annotations of fields without spans
_NODE_FIELDS: dict[type, tuple[str, ...]] = {}
_new = object.__new__
_set = object.__setattr__


def _shifted(x, d: int):
    """The AST value `x` with every span `d` lines further down: new objects, built without running the
    frozen dataclasses' constructors (a copy of each one's fields, the spans and nodes among them moved)."""
    t = type(x)
    if t is tuple:
        return tuple([_shifted(i, d) for i in x])
    if t in _PLAIN:
        return x
    fields = x.__dict__.copy()
    if t is Span:
        fields["line"] += d
        fields["end_line"] += d
    else:
        names = _NODE_FIELDS.get(t)
        if names is None:  # by the annotations (strings here): a new AST field is moved unless plainly typed
            names = _NODE_FIELDS[t] = tuple(f.name for f in dataclasses.fields(t) if str(f.type) not in _PLAIN_FIELDS)
        for k in names:
            v = fields[k]
            if v is not None:
                fields[k] = _shifted(v, d)
    o = _new(t)
    _set(o, "__dict__", fields)
    return o


class Reparser:
    """Parses successive versions of documents, keeping each chunk's statements for the next version.

    The memory is bounded by the documents' latest two versions (a chunk seen in neither is dropped)."""

    FILES = 16  # documents remembered; parsing a 17th forgets the one parsed least recently
    WHOLE = 0.25  # when more than this share of the chunks is new (opening a file), parse the text whole

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: dict[tuple[str, str, int], tuple] = {}  # (file, chunk, first line) -> statements
        self._any: dict[tuple[str, str], int] = {}  # (file, chunk) -> a line it was parsed at
        self._live: dict[str, set] = {}  # file -> the keys its latest version used
        self._older: dict[str, set] = {}
        self._files: dict[str, None] = {}  # the documents, least recently parsed first
        self._keep = True
        self.parsed = 0  # chunks parsed by the last call (the whole text counts as its chunks), for tests

    def parse(self, text: str, file: str = "<spec>", keep: bool = True) -> ast.Program:
        """The Program of `text`, as `syntax.parse(text, file)` gives it; raises the same CompileError.

        `keep=False` for a text that is not a new version of the document (the lines above an error):
        what it parses is kept beside the document's latest version instead of becoming the latest."""
        with self._lock:
            self._keep = keep
            try:
                return self._parse(text, file)
            except RecursionError:  # nested deeper than Python recurses: forget the half-filed document
                self.close(file, locked=True)
                raise

    def _parse(self, text: str, file: str) -> ast.Program:
        parts = chunks(text)
        memo, known = self._memo, self._any
        new = [i for i, (line, chunk) in enumerate(parts)
               if (file, chunk, line) not in memo and (file, chunk) not in known]
        used = {(file, chunk, line) for line, chunk in parts}
        if len(parts) < 2 or len(new) > self.WHOLE * len(parts):
            self.parsed = len(parts)
            prog = syntax.parse(text, file)
            self._remember_whole(prog, parts, file)
            self._forget(file, used)
            return prog
        self.parsed = len(new)
        stmts: list = []
        for line, chunk in parts:
            key = (file, chunk, line)
            part = memo.get(key)
            if part is None:
                at = known.get((file, chunk))
                if at is not None and (file, chunk, at) in memo:
                    part = _shifted(memo[(file, chunk, at)], line - at)
                else:
                    try:
                        part = syntax.parse("\n" * line + chunk, file).stmts
                    except CompileError:
                        self._keep = False  # a broken version: remember its chunks, keep the last good one
                        self._forget(file, used)
                        return syntax.parse(text, file)  # the whole text's own diagnostic
                memo[key] = part
                known[(file, chunk)] = line
            stmts.extend(part)
        self._forget(file, used)
        return ast.Program(tuple(stmts), file)

    def _remember_whole(self, prog: ast.Program, parts: list, file: str) -> None:
        """File the statements of a whole parse under the chunks they start in."""
        starts = [line for line, _ in parts]
        groups: list[list] = [[] for _ in parts]
        for s in prog.stmts:
            groups[bisect.bisect_right(starts, s.span.line - 1) - 1].append(s)
        ends = starts[1:] + [None]  # a chunk's last line (1-based) is the next chunk's first (0-based)
        for (line, chunk), group, end in zip(parts, groups, ends, strict=True):
            if not group or (end is not None and group[-1].span.end_line > end):
                continue  # a statement runs past its chunk: a cut in the wrong place, so keep nothing of it
            self._memo[(file, chunk, line)] = tuple(group)
            self._any[(file, chunk)] = line

    def _forget(self, file: str, used: set) -> None:
        """Keep the chunks of this version and the one before; drop older ones."""
        if not self._keep:
            self._live.setdefault(file, set()).update(used)
            return
        self._files.pop(file, None)
        self._files[file] = None
        while len(self._files) > self.FILES:
            self.close(next(iter(self._files)), locked=True)
        older = self._older.get(file, set())
        self._older[file] = self._live.get(file, set())
        self._live[file] = used
        for key in older - self._older[file] - used:
            self._memo.pop(key, None)
            if self._any.get(key[:2]) == key[2]:
                del self._any[key[:2]]

    def close(self, file: str, locked: bool = False) -> None:
        """Forget a document (the editor closed it)."""
        if not locked:
            with self._lock:
                return self.close(file, locked=True)
        self._files.pop(file, None)
        for key in self._live.pop(file, set()) | self._older.pop(file, set()):
            self._memo.pop(key, None)
            self._any.pop(key[:2], None)
