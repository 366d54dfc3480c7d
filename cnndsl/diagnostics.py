"""Diagnostics: the one data type for everything a user did wrong, and its one renderer.

Every stage (syntax, graph build, passes) reports problems as `Diagnostic` values; only `render`
turns them into text, in the rustc/ruff layout: a clickable `path:line:col:` header, the source line
exactly as written, a caret span, then notes and a help line.
"""

from __future__ import annotations

import functools
import json
from dataclasses import field

from .records import record


@record
class Span:
    """A region of one source file; line and column are 1-based, `end_col` is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


@record
class Note:
    message: str
    span: Span | None = None


@record
class Diagnostic:
    """One problem: `code` is a stable kebab-case id such as `shape-mismatch`."""

    severity: str  # "error" | "warning"
    code: str
    message: str
    span: Span | None
    notes: tuple[Note, ...] = ()
    help: str | None = None

    def with_notes(self, *notes: Note) -> Diagnostic:
        return Diagnostic(self.severity, self.code, self.message, self.span, self.notes + notes, self.help)


def error(code: str, message: str, span: Span | None, *, notes=(), help: str | None = None) -> Diagnostic:
    return Diagnostic("error", code, message, span, tuple(notes), help)


def warning(code: str, message: str, span: Span | None, *, notes=(), help: str | None = None) -> Diagnostic:
    return Diagnostic("warning", code, message, span, tuple(notes), help)


@record(frozen=False)
class CompileError(Exception):
    """Raised when a spec has at least one error; carries every diagnostic found and the sources."""

    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(render(d, self.sources, "concise") for d in self.diagnostics)


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c != 0x09}
MAX_SHOWN = 160  # characters of a source line shown around the caret


def clean(text: str) -> str:
    """Text safe for a terminal: control characters (escape sequences, form feeds, ...) shown as `\\xNN`."""
    return text.translate(_CONTROL)


@functools.lru_cache(maxsize=8)
def _lines(text: str) -> list[str]:
    # NOTE: split on "\n" only, as the parser counts lines (str.splitlines also breaks at form feeds and
    # Unicode line separators, which showed the wrong line), and once per file, not once per diagnostic
    # (40,000 diagnostics re-splitting a 240 KB file took 58 s). A str caches its hash, so the lookup is cheap.
    return [ln.removesuffix("\r") for ln in text.split("\n")]


def _header(d: Diagnostic) -> str:
    where = f"{d.span.file}:{d.span.line}:{d.span.col}: " if d.span else ""
    return clean(f"{where}{d.severity}[{d.code}]: {d.message}")


def render(d: Diagnostic, sources: dict[str, str], fmt: str = "full") -> str:
    """Format one diagnostic: `full` (header, source, caret, notes) or `concise` (header only)."""
    if fmt == "concise":
        return _header(d)
    out = [_header(d)]
    text = sources.get(d.span.file) if d.span else None
    if d.span and text is not None:
        lines = _lines(text)
        line_no = min(max(d.span.line, 1), len(lines))
        src = lines[line_no - 1].replace("\t", " ")
        gutter = " " * len(str(line_no))
        start = min(max(d.span.col, 1), len(src) + 1)
        end = d.span.end_col if d.span.end_line == d.span.line else len(src) + 1
        width = max(1, min(end, len(src) + 1) - start)
        if len(src) > MAX_SHOWN:  # a window around the caret, so a 1 MB line prints as one screen line
            lo = max(0, start - 1 - MAX_SHOWN // 2)
            src = ("..." if lo else "") + src[lo:lo + MAX_SHOWN] + ("..." if lo + MAX_SHOWN < len(src) else "")
            start = start - lo + (3 if lo else 0)
            width = max(1, min(width, len(src) - start + 1))
        before, marked = clean(src[:start - 1]), clean(src[start - 1:start - 1 + width])  # `\x1b` is 4 wide
        caret = " " * len(before) + "^" * max(1, len(marked))
        out += [f"{gutter} |", f"{line_no} | {clean(src)}", f"{gutter} | {caret}"]
        pad = gutter
    else:
        pad = " "
    for note in d.notes:
        where = f" (at {note.span.line}:{note.span.col})" if note.span else ""
        if note.span and d.span and note.span.file != d.span.file:
            where = f" (at {note.span.file}:{note.span.line}:{note.span.col})"
        out.append(clean(f"{pad} = note: {note.message}{where}"))
    if d.help:
        out.append(clean(f"{pad} = help: {d.help}"))
    return "\n".join(out)


def to_json(d: Diagnostic) -> dict:
    """A stable machine-readable form of one diagnostic."""
    span = None
    if d.span:
        s = d.span
        span = {"file": s.file, "line": s.line, "col": s.col, "end_line": s.end_line, "end_col": s.end_col}
    return {
        "severity": d.severity,
        "code": d.code,
        "message": d.message,
        "span": span,
        "notes": [n.message for n in d.notes],
        "help": d.help,
    }


def dumps(diags: list[Diagnostic]) -> str:
    return json.dumps([to_json(d) for d in diags], indent=2)
