"""The editor's incremental check (cnndsl.incremental, cnndsl.editing.analyze) against the full one.

Every spec of the zoo, the bundled libraries and the golden error cases goes through a sequence of edits
of the kinds an editor sends (insert and delete lines, change a number, break a line and fix it, change
the input shape); after each edit the incremental parse must be the whole parse, field for field, and the
editor's diagnostics and model the ones `compile_text` gives for the whole text.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest

from cnndsl import syntax
from cnndsl.diagnostics import CompileError
from cnndsl.editing import analyze
from cnndsl.incremental import Reparser, chunks
from cnndsl.model import compile_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate  # noqa: E402

CORPUS = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "cnndsl" / "blocks").glob("*.cnn")) + \
    sorted((ROOT / "tests" / "errors").glob("*.cnn"))
BREAKS = ("conv f=", " -> ->", " (", " {", " }", " | relu", " ]", "\n-> relu", " ;", "\n  | conv f=1 n=2")


def _edit(rng: random.Random, text: str, original: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    what = rng.choice(["insert", "comment", "delete", "duplicate", "number", "break", "break", "input", "revert"])
    if what == "insert":
        lines.insert(i, rng.choice(["", "relu", "conv f=3 n=4 p=same", "  -> bn", "x = relu", "block q { relu }"]))
    elif what == "comment":
        lines.insert(i, "# a comment -> with ( punctuation")
    elif what == "delete" and len(lines) > 1:
        del lines[i]
    elif what == "duplicate":
        lines.insert(i, lines[i])
    elif what == "number":
        lines[i] = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 3)), lines[i], count=1)
    elif what == "break":
        lines[i] += rng.choice(BREAKS)
    elif what == "input":
        return re.sub(r"(?m)^input [0-9x]+", "input 64x64x3", text, count=1)
    elif what == "revert":
        return original
    return "\n".join(lines)


def _parsed(parse, text: str):
    try:
        return parse(text, "doc.cnn")
    except CompileError as e:
        return e.diagnostics


def _checked(text: str, path: str):
    """What the editor shows for a text: diagnostics, and the layers and totals when it compiles."""
    try:
        m = compile_text(text, path, max_layers=50_000)
    except CompileError as e:
        return e.diagnostics, None, None
    return m.warnings, m.layers, m.totals


@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_incremental_parse_is_the_whole_parse_after_every_edit(spec):
    original = spec.read_text(encoding="utf-8")
    rng = random.Random(spec.name)
    r = Reparser()
    text = original
    for _ in range(12):
        assert _parsed(r.parse, text) == _parsed(syntax.parse, text), text
        text = _edit(rng, text, original)


@pytest.mark.parametrize("spec", [ROOT / "specs" / n for n in ("resnet50.cnn", "googlenet.cnn", "unet.cnn",
                                                                "mobilenet_v3_small.cnn", "lenet5.cnn")]
                         + [ROOT / "tests" / "errors" / n for n in ("add_mismatch.cnn", "arity.cnn")],
                         ids=lambda p: p.name)
def test_editor_diagnostics_and_model_are_the_full_checks(spec):
    original = spec.read_text(encoding="utf-8")
    path = str(spec)
    rng = random.Random(spec.name)
    r = Reparser()
    text = original
    for _ in range(8):
        a = analyze(text, path, reparser=r)
        diags, layers, totals = _checked(text, path)
        assert a.diagnostics == list(diags), text
        assert (a.model.layers, a.model.totals) == (layers, totals) if a.model else layers is None
        text = _edit(rng, text, original)


def test_an_edit_of_one_line_parses_one_statement_again():
    text = generate("residual", 2_000)
    r = Reparser()
    assert r.parse(text) == syntax.parse(text)
    assert r.parsed == len(chunks(text))  # opening the file parses it all
    lines = text.split("\n")
    lines[1000] = lines[1000].replace("n=8", "n=16")
    edited = "\n".join(lines)
    assert r.parse(edited) == syntax.parse(edited)
    assert r.parsed == 1
    moved = "# a new first line\n" + edited  # every statement moves down a line: none is parsed again
    assert r.parse(moved) == syntax.parse(moved)
    assert r.parsed == 0 or r.parsed == 1  # the first chunk (the comment joins the network line)


def test_statements_spanning_lines_stay_whole():
    text = "\n".join([
        "network t", "input 32x32x3", "fn half(v) =", "  v // 2", "conv f=3 n=8 ->  # a comment",
        "  relu", "  -> pool f=2", "x = concat {", "    conv f=1 n=4", "  | identity", "}", 'import "a#b.cnn"',
        "output x,", "  x", "",
    ])
    starts = [line for line, _ in chunks(text)]
    assert starts == [0, 1, 2, 4, 7, 11, 12]
    assert "\n".join(c for _, c in chunks(text)) == text


def test_a_broken_version_does_not_cost_the_next_good_one():
    text = generate("chain", 1_000)
    r = Reparser()
    r.parse(text)
    lines = text.split("\n")
    broken = "\n".join(lines[:500] + [lines[500] + " -> ->"] + lines[501:])
    with pytest.raises(CompileError) as e:
        r.parse(broken)
    with pytest.raises(CompileError) as full:
        syntax.parse(broken)
    assert e.value.diagnostics == full.value.diagnostics
    assert r.parse(text) == syntax.parse(text)
    assert r.parsed == 0  # the good version's statements were kept through the broken one
