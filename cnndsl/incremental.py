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

A chunk can be one long statement (a `concat` of thousands of branches, a long `block` body), which would be
parsed whole on every keystroke. So when the latest version that parsed had a chunk at the same place and
line, an edit of it is parsed as small as it can be (`_Patch`): the changed characters are found, then the
innermost list that holds them (a body, an `if` arm, a branch's statements, a merge's branches), the
shortest run of its items that covers them, and the new text of that run alone is parsed, padded to stand on
its lines and columns (a run of branches inside `concat{ }`); the enclosing nodes are rebuilt around the new
items, and what follows the edit is moved by its change in lines (and in columns, on its last line). Why
that is the chunk's own parse: such a list is `stmt (_NL stmt)*` or `branch (_VBAR branch)*` between
brackets, so any text that parses as such a list (from an item's first token to an item's last) may stand
for a run of its items, and the grammar derives the new chunk as the old tree with that run replaced; the
tokens are the same because nothing before the run (`{`, `|`, blank space) or after it (blank space, a
comment, `|`, `}`) lets a token reach across its edges, and the parser's states inside a statement do not
depend on the list it stands in. When that does not hold (the edit touches the brackets around the list, the
text does not parse alone, even with a neighbour on each side), the chunk is parsed, and a chunk that fails,
the whole text, as before.
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
        for ch in brackets:  # the brackets, and any character beyond ASCII (in a quoted path), passed over
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
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
        for k in _NODE_FIELDS.get(t) or _node_fields(t):
            v = fields[k]
            if type(v) is Span:  # half of what is moved: done here, without a call
                sd = v.__dict__.copy()
                sd["line"] += d
                sd["end_line"] += d
                v = _new(Span)
                _set(v, "__dict__", sd)
                fields[k] = v
            elif v is not None:
                fields[k] = _shifted(v, d)
    o = _new(t)
    _set(o, "__dict__", fields)
    return o


def _node_fields(t: type) -> tuple[str, ...]:
    """The fields of an AST class that can hold spans, by the annotations (strings here): a new AST field is
    moved unless plainly typed."""
    names = _NODE_FIELDS[t] = tuple(f.name for f in dataclasses.fields(t) if str(f.type) not in _PLAIN_FIELDS)
    return names


# --- parsing an edit inside a long statement -------------------------------------------------------


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix, by halving: slices compared in C, O(n) in all."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, most: int) -> int:
    """The length of the longest common suffix, at most `most`."""
    lo, hi, na, nb = 0, most, len(a), len(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[na - mid:na - lo] == b[nb - mid:nb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _NoPatch(Exception):
    """The edit cannot be parsed on its own with certainty: parse the chunk."""


def _start(x) -> tuple[int, int]:
    """Where a statement, a branch (a tuple of statements) or an `if` arm (condition, body) starts."""
    while type(x) is tuple:
        x = x[0]
    return x.span.line, x.span.col


def _end(x) -> tuple[int, int]:
    while type(x) is tuple:
        x = x[-1]
    return x.span.end_line, x.span.end_col


def _rebuilt(x, **changes):
    """`x` with some fields replaced, without running the frozen record's constructor (as `_shifted`)."""
    fields = x.__dict__.copy()
    fields.update(changes)
    o = _new(type(x))
    _set(o, "__dict__", fields)
    return o


_MERGE = "concat{"  # written before a run of branches parsed alone
_BEFORE = frozenset(" \t\f\r\n{|")  # what may stand just before a replaced run: no token reaches across it
_AFTER = frozenset(" \t\f\r\n#|}")  # and just after it


class _Patch:
    """An edit of one chunk, parsed as small as it can be: `stmts(old statements, top=True)` is the new
    chunk's statements, or None (or raises _NoPatch) when the chunk must be parsed.

    The old chunk's text [a, old_end) became the new one's [a, old_end + delta); positions are the
    document's (line, column), 1-based, as in Spans. A list that cannot take the edit answers None and the
    list around it tries (a larger text); a text that does not parse stops the search (_NoPatch)."""

    def __init__(self, old: str, new: str, line: int, file: str) -> None:
        a = _common_prefix(old, new)
        b = _common_suffix(old, new, min(len(old), len(new)) - a)
        self.old, self.new, self.line, self.file = old, new, line, file
        self.a, self.old_end, self.delta = a, len(old) - b, len(new) - len(old)
        self.first = self._pos(old, a)  # the first changed position, and the end of the old changed text
        self.last = self._pos(old, self.old_end)
        self.parsed = 0  # characters given to the parser
        self.failed = False  # a text parsed alone did not parse
        self.move: _Mover | None = None  # moves what follows the replaced run, once it is replaced

    def _pos(self, text: str, off: int) -> tuple[int, int]:
        return self.line + 1 + text.count("\n", 0, off), off - text.rfind("\n", 0, off)

    def _offset(self, at: tuple[int, int], anchor: int, forward: bool) -> int | None:
        """The offset in the old text of position `at`, found line by line from the changed offset `anchor`."""
        text = self.old
        pos = text.rfind("\n", 0, anchor) + 1  # the start of the anchor's line
        line = self.line + 1 + text.count("\n", 0, pos)
        if (at[0] > line) != forward and at[0] != line:
            return None
        while line != at[0]:
            if forward:
                pos = text.find("\n", pos) + 1
                if pos == 0:
                    return None
                line += 1
            else:
                if pos == 0:
                    return None
                pos = text.rfind("\n", 0, pos - 1) + 1
                line -= 1
        nl = text.find("\n", pos)
        return pos + at[1] - 1 if at[1] - 1 <= (len(text) if nl < 0 else nl) - pos else None

    # --- the lists an edit may stand in, innermost first

    def stmts(self, items: tuple, top: bool = False, branch: bool = False) -> tuple | None:
        """`items` (a body, a branch, the chunk's statements) with the edited statements parsed again. Only in a
        branch may a text that does not parse be tried larger (as branches: the new text may hold a `|`)."""
        i = bisect.bisect_right(items, self.first, key=_start) - 1  # the last statement starting before the edit
        j = bisect.bisect_left(items, self.last, key=_end)  # the first ending after it
        if i < 0 or j >= len(items) or j < i:
            return None  # before the list's first statement or after its last: the brackets are near
        if i == j:
            inner = self.node(items[i])
            if inner is not None:
                return items[:i] + (inner,) + self.tail(items[i + 1:])
        if top:
            return None
        got = self.run(items, i, j)
        if got is None and self.failed and not branch:
            raise _NoPatch  # no larger text is likelier to parse: parse the chunk
        return got

    def run(self, items: tuple, i: int, j: int, branches: bool = False) -> tuple | None:
        """`items` with its items i to j parsed again from the new text; failing that (the new text starts or
        ends in blank space, or joins a neighbour: `->` at the end of a line), with a neighbour on each side."""
        got = self.region(items[i], items[j], branches)
        if got is None and (i > 0 or j + 1 < len(items)):
            i, j = max(i - 1, 0), min(j + 1, len(items) - 1)
            got = self.region(items[i], items[j], branches)
        return None if got is None else items[:i] + got + self.tail(items[j + 1:])

    def node(self, x):
        """A statement with the edit parsed inside one of its lists, or None if no list takes the edit."""
        t = type(x)
        if t is ast.ChainStmt or t is ast.Assign:
            chain = x.chain
            elements = chain.elements
            k = bisect.bisect_right(elements, self.first, key=_start) - 1
            if k < 0 or _end(elements[k]) < self.last:
                return None
            inner = self.element(elements[k])
            if inner is None:
                return None
            chain = _rebuilt(chain, elements=elements[:k] + (inner,) + self.tail(elements[k + 1:]),
                             span=self.move(chain.span))
            return _rebuilt(x, chain=chain, span=self.move(x.span))
        if t is ast.Block:
            body = self.inside(x.body)
            return None if body is None else _rebuilt(x, body=body, span=self.move(x.span))
        return None

    def element(self, e):
        t = type(e)
        if t is ast.Branches:
            branches = e.branches
            k = bisect.bisect_right(branches, self.first, key=_start) - 1  # the branches the edit spans
            last = bisect.bisect_left(branches, self.last, key=_end)
            if k < 0 or last >= len(branches) or last < k:
                return None  # the edit touches the brackets: before the first branch or after the last
            inner = None
            if k == last:
                inner = self.stmts(branches[k], branch=True)
                if inner is not None:
                    inner = branches[:k] + (inner,) + self.tail(branches[k + 1:])
            if inner is None:
                inner = self.run(branches, k, last, branches=True)
                if inner is None and self.failed:
                    raise _NoPatch
            return None if inner is None else _rebuilt(e, branches=inner, span=self.move(e.span))
        if t is ast.Residual or t is ast.Shortcut or t is ast.Repeat or t is ast.For:
            body = self.inside(e.body)
            return None if body is None else _rebuilt(e, body=body, span=self.move(e.span))
        if t is ast.If:
            for k, (cond, body) in enumerate(e.arms):
                if body and _start(body) <= self.first and self.last <= _end(body):
                    inner = self.inside(body)
                    if inner is None:
                        return None
                    arms = e.arms[:k] + ((cond, inner),) + self.tail(e.arms[k + 1:])
                    orelse = None if e.orelse is None else self.tail(e.orelse)
                    return _rebuilt(e, arms=arms, orelse=orelse, span=self.move(e.span))
            inner = self.inside(e.orelse)
            return None if inner is None else _rebuilt(e, orelse=inner, span=self.move(e.span))
        if t is ast.Annotated:
            inner = self.element(e.element)
            return None if inner is None else _rebuilt(e, element=inner, span=self.move(e.span),
                                                       shape_span=self.move(e.shape_span))
        return None

    def inside(self, body: tuple | None) -> tuple | None:
        """A body with the edit parsed in it, or None when the edit is not between its first and last statement."""
        if not body or _start(body) > self.first or _end(body) < self.last:
            return None
        return self.stmts(body)

    def region(self, first, last, branches: bool = False) -> tuple | None:
        """The statements of the new text from `first`'s start to `last`'s end, parsed alone where they stand,
        or None. With `branches`, `first` and `last` are branches, and so is what is returned: the text is
        parsed as the branches of a merge, `concat{` written in the blank space before it (or the line above)."""
        if self.move is not None:
            return None
        start, end = _start(first), _end(last)
        s = self._offset(start, self.a, forward=False)
        e = self._offset(end, self.old_end, forward=True)
        old, new = self.old, self.new
        if s is None or e is None or not (0 < s <= self.a and self.old_end <= e < len(old)):
            return None
        if old[s - 1] not in _BEFORE or old[e] not in _AFTER:
            return None  # a token could reach across an edge (never so in a text that parsed)
        text = new[s:e + self.delta]
        if not text or not (text[0].isascii() and (text[0].isalpha() or text[0] == "_")) or text[-1].isspace():
            return None  # every statement starts with a name or a keyword, and the run ends with a statement
        tail = text[text.rfind("\n") + 1:]
        if "#" in tail and _code(tail) != tail.strip():
            return None  # it ends with a comment
        new_end = self._pos(new, e + self.delta)
        line, col = start
        if not branches:
            padded = "\n" * (line - 1) + " " * (col - 1) + text
        elif col > len(_MERGE):
            padded = "\n" * (line - 1) + " " * (col - 1 - len(_MERGE)) + _MERGE + text + "}"
        elif line > 1:
            padded = "\n" * (line - 2) + _MERGE + "\n" + " " * (col - 1) + text + "}"
        else:
            return None
        self.parsed += len(text)
        try:
            stmts = syntax.parse(padded, self.file).stmts
        except CompileError:
            self.failed = True
            return None
        if branches:  # the one statement `concat{ ... }`: its branches
            if len(stmts) != 1 or type(stmts[0]) is not ast.ChainStmt or len(stmts[0].chain.elements) != 1 \
                    or type(stmts[0].chain.elements[0]) is not ast.Branches:
                return None
            stmts = stmts[0].chain.elements[0].branches
        if not stmts or _start(stmts[0]) != start or _end(stmts[-1]) != new_end:
            return None  # it ends in a comment, or does not start where the old run did
        self.move = _Mover(end, new_end[0] - end[0], new_end[1] - end[1])
        return stmts

    def tail(self, items: tuple) -> tuple:
        """The items after the replaced run, moved (those wholly below its last line: by lines alone)."""
        m = self.move
        if m is None or not items or (m.dline == 0 and m.dcol == 0):
            return items
        if m.dline == 0:  # only what stands on the run's last line moves, along it
            out = []
            for k, x in enumerate(items):
                if _start(x)[0] > m.line:
                    return tuple(out) + items[k:]
                out.append(m(x))
            return tuple(out)
        return tuple([m(x) for x in items])


class _Mover:
    """Moves what follows a replaced run: a position at or after `end` (the run's old end) goes `dline` lines
    down, and `dcol` columns along when it stands on the run's last line."""

    def __init__(self, end: tuple[int, int], dline: int, dcol: int) -> None:
        self.end, self.line, self.dline, self.dcol = end, end[0], dline, dcol

    def __call__(self, x):
        t = type(x)
        if t is tuple:
            return tuple([self(i) for i in x])
        if t in _PLAIN:
            return x
        if t is Span:
            fields = x.__dict__.copy()
            for ln, col in (("line", "col"), ("end_line", "end_col")):
                if (fields[ln], fields[col]) >= self.end:
                    if fields[ln] == self.line:
                        fields[col] += self.dcol
                    fields[ln] += self.dline
            o = _new(Span)
            _set(o, "__dict__", fields)
            return o
        span = x.span
        if (span.end_line, span.end_col) < self.end:
            return x  # wholly before the run
        if span.line > self.line:
            return _shifted(x, self.dline) if self.dline else x
        fields = x.__dict__.copy()
        for k in _NODE_FIELDS.get(t) or _node_fields(t):
            v = fields[k]
            if v is not None:
                fields[k] = self(v)
        o = _new(t)
        _set(o, "__dict__", fields)
        return o


class Reparser:
    """Parses successive versions of documents, keeping each chunk's statements for the next version.

    The memory is bounded by the documents' latest two versions (a chunk seen in neither is dropped)."""

    FILES = 16  # documents remembered; parsing a 17th forgets the one parsed least recently
    WHOLE = 0.25  # when more than this share of the chunks, and of the text, is new (opening a file), parse it whole
    PATCH = 8  # up to this many new chunks (an edit, a few cursors' edits), each is parsed in part if it can be

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: dict[tuple[str, str, int], tuple] = {}  # (file, chunk, first line) -> statements
        self._any: dict[tuple[str, str], int] = {}  # (file, chunk) -> a line it was parsed at
        self._live: dict[str, set] = {}  # file -> the keys its latest version used
        self._older: dict[str, set] = {}
        self._files: dict[str, None] = {}  # the documents, least recently parsed first
        self._last: dict[str, list] = {}  # file -> the chunks of its latest version that parsed
        # file -> what an editor made of the document's latest version (cnndsl.editing keeps its last check
        # here), forgotten with the document
        self.results: dict[str, object] = {}
        self._keep = True
        self.parsed = 0  # chunks parsed by the last call, whole or in part (the whole text counts as its chunks)
        self.patched = 0  # of those, the chunks of which only the edited statements were parsed
        self.parsed_chars = 0  # the characters the last call gave to the parser (padding not counted)

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
        self.patched = self.parsed_chars = 0
        if 0 < len(new) <= self.PATCH:
            new = self._patch(parts, new, file)
        if (len(parts) < 2 and new) or (len(new) > self.WHOLE * len(parts)
                                         and sum(len(parts[i][1]) for i in new) > self.WHOLE * len(text)):
            self.parsed = len(parts)
            self.parsed_chars = len(text)
            prog = syntax.parse(text, file)
            self._remember_whole(prog, parts, file)
            self._forget(file, used)
            if self._keep:
                self._last[file] = parts
            return prog
        self.parsed = len(new) + self.patched
        stmts: list = []
        for line, chunk in parts:
            key = (file, chunk, line)
            part = memo.get(key)
            if part is None:
                at = known.get((file, chunk))
                if at is not None and (file, chunk, at) in memo:
                    part = _shifted(memo[(file, chunk, at)], line - at)
                else:
                    self.parsed_chars += len(chunk)
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
        if self._keep:
            self._last[file] = parts
        return ast.Program(tuple(stmts), file)

    def _patch(self, parts: list, new: list[int], file: str) -> list[int]:
        """Parse in part the new chunks whose place and line the latest version's chunks share (an edit inside
        a long statement, see _Patch); file their statements and return the chunks still to parse."""
        last = self._last.get(file)
        if last is None or len(last) != len(parts):
            return new
        rest = []
        for i in new:
            line, chunk = parts[i]
            old_line, old = last[i]
            stmts = self._memo.get((file, old, old_line)) if old_line == line else None
            if stmts is not None:
                patch = _Patch(old, chunk, line, file)
                try:
                    stmts = patch.stmts(stmts, top=True)
                except (_NoPatch, RecursionError):  # RecursionError: nested deeper than the walk recurses
                    stmts = None
                self.parsed_chars += patch.parsed
            if stmts is None:
                rest.append(i)
                continue
            self._memo[(file, chunk, line)] = stmts
            self._any[(file, chunk)] = line
            self.patched += 1
        return rest

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
        self._last.pop(file, None)
        self.results.pop(file, None)
        for key in self._live.pop(file, set()) | self._older.pop(file, set()):
            self._memo.pop(key, None)
            self._any.pop(key[:2], None)
