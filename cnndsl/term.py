"""The terminal: colour on a terminal only (NO_COLOR / FORCE_COLOR), and output that survives any stdout
encoding. Used by cli.py alone; a pass or a backend never looks at the terminal.
"""

from __future__ import annotations

import codecs
import os
import re
import sys

# What a character outside the stream's encoding (`PYTHONIOENCODING=ascii`, a Windows code page) is
# written as: the notes' notation first, then `?` for anything else.
ASCII = {
    "×": "x", "·": "-", "⊕": "+", "⊗": "*", "‖": "||", "…": "...", "—": "-", "–": "-", "→": "->", "≈": "~",
    "├": "|", "└": "`", "│": "|", "─": "-", "✓": "ok", "✗": "x", "µ": "u", "²": "^2",
}


def _ascii_fallback(e: UnicodeError):
    if not isinstance(e, UnicodeEncodeError):
        raise e
    text = e.object[e.start:e.end]
    return "".join(ASCII.get(c, "?") for c in text), e.end


codecs.register_error("cnndsl-ascii", _ascii_fallback)


def make_safe(*streams) -> None:
    """Let each text stream write any character: those its encoding lacks become ASCII (`×` -> `x`)."""
    for s in streams or (sys.stdout, sys.stderr):
        if hasattr(s, "reconfigure"):
            try:
                s.reconfigure(errors="cnndsl-ascii")
            except (ValueError, OSError):  # a closed or detached stream: nothing to protect
                pass


def wants_color(stream, choice: str = "auto") -> bool:
    """`--color always|never|auto`; auto: a terminal, unless NO_COLOR is set, or FORCE_COLOR is set
    (https://no-color.org, https://force-color.org)."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


RED, YELLOW, BLUE, CYAN, BOLD, RESET = "\x1b[31;1m", "\x1b[33;1m", "\x1b[34;1m", "\x1b[36;1m", "\x1b[1m", "\x1b[0m"

_HEADER = re.compile(r"^(?P<where>\S+:\d+:\d+: )?(?P<sev>error|warning)(?P<code>\[[\w-]+\]): (?P<msg>.*)$")
_GUTTER = re.compile(r"^(?P<num>\s*\d*\s*)\|(?P<rest>.*)$")
_NOTE = re.compile(r"^(?P<pad>\s*)= (?P<what>note|help):(?P<rest>.*)$")


def paint(text: str) -> str:
    """Colour a rendered diagnostic as rustc and ruff do: the severity, the gutter, the carets, notes."""
    out = []
    for line in text.split("\n"):
        m = _HEADER.match(line)
        if m:
            colour = RED if m["sev"] == "error" else YELLOW
            out.append(f"{BOLD}{m['where'] or ''}{RESET}{colour}{m['sev']}{m['code']}{RESET}: {BOLD}{m['msg']}{RESET}")
            continue
        m = _GUTTER.match(line)
        if m:
            rest = m["rest"]
            if rest.strip() and set(rest.strip()) == {"^"}:
                rest = re.sub(r"\^+", lambda c: f"{RED}{c[0]}{RESET}", rest)
            out.append(f"{BLUE}{m['num']}|{RESET}{rest}")
            continue
        m = _NOTE.match(line)
        if m:
            out.append(f"{m['pad']}{BLUE}={RESET} {BOLD}{m['what']}{RESET}:{m['rest']}")
            continue
        out.append(line)
    return "\n".join(out)
