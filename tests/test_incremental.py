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
from cnndsl.editing import analyze, hover
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
        # a keystroke pays for the diagnostics only; the table and totals, made when asked, are the full check's
        assert a.model is None or a.model.pending is not None
        assert (a.model.costed().layers, a.model.totals) == (layers, totals) if a.model else layers is None
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


def test_a_new_line_above_one_long_statement_moves_it_without_parsing_it():
    # three chunks, one of them 2,000 lines long: a new line in the first changes one chunk of three, but a
    # few characters of the text, so the long statement is moved, not parsed again
    text = generate("wide", 2_000)
    r = Reparser()
    r.parse(text)
    lines = text.split("\n")
    moved = "\n".join(lines[:1] + ["# a new line"] + lines[1:])
    assert r.parse(moved) == syntax.parse(moved)
    assert r.parsed == 1 and r.parsed_chars < 100


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


# --- edits inside one long statement: only the edited statements (or branches) are parsed again ----------

def _body(head: str, n: int, indent: str = "  ") -> list[str]:
    return [head] + [indent + (f"conv f=1 n={i % 7 + 1}" if i % 3 else "relu -> bn") for i in range(n)] + ["}"]


LONG = {
    "wide": generate("wide", 120),
    "block": "\n".join(["network b", "input 8x8x4", *_body("block big(n=4) {", 60), "big()", ""]),
    "nested": "\n".join([
        "network nested", "input 16x16x8", "let table = [(1, 2), (3, 4)]",
        "x = concat {",
        "    conv f=1 n=4 -> residual {", *_body("  repeat 2 {", 12, "    ")[1:-1], "    }",
        "  | pool f=3 s=1 p=same -> add { identity | conv f=1 n=8 : 16x16x8 } : 16x16x8",
        "  | concat { conv \"é😀\" f=1 n=1 | conv f=1 n=2 |\tconv f=1 n=3 }   # unicode before a branch",
        "  | if true {", *_body("", 12, "\t\t")[1:-1], "    } elif false { relu } else {", "      identity", "    }",
        "}",
        *_body("block b(s=1) {", 6),
        *_body("for (k, c) in table {", 10), "",
    ]),
    "library": "\n".join(_body("block lib(n=4) {", 30)[:-1] + _body("  repeat 3 {", 30, "    ") + ["}", ""]),
    "crlf": "\r\n".join(["network w", "input 8x8x2", *_body("y = mul {", 1)[:-1],
                         *(f"  | conv f=1 n={i}" for i in range(1, 40)), "}", ""]),
}
INNER = ("relu", "conv f=3 n=4 p=same", "", "# a comment | with -> punctuation", "  | conv f=1 n=5", "| relu",
         "  -> bn", "residual { relu }", "\tconv f=1 n=1 # é", "if true { relu } else { identity }", "}", "{")


def _inner_edit(rng: random.Random, text: str) -> str:
    """An edit of a line inside the long statements (never the first three lines or the last two)."""
    lines = text.split("\n")
    i = rng.randrange(3, len(lines) - 2)
    what = rng.choice(["number", "number", "number", "insert", "delete", "duplicate", "char", "break", "bar"])
    if what == "number":
        lines[i] = re.sub(r"\d+", lambda m: str(int(m.group()) * 11 + rng.randint(1, 3)), lines[i], count=1)
    elif what == "insert":
        lines.insert(i, rng.choice(INNER))
    elif what == "delete":
        del lines[i]
    elif what == "duplicate":
        lines.insert(i, lines[i])
    elif what == "char":
        at = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:at] + rng.choice([" ", "\t", "é", "x", "1", " -> relu", "#"]) + lines[i][at:]
    elif what == "break":
        lines[i] += rng.choice(BREAKS)
    else:  # a branch's `|` taken away or put back
        lines[i] = lines[i].replace("|", " ", 1) if "|" in lines[i] else "| " + lines[i].lstrip()
    return "\n".join(lines)


@pytest.mark.parametrize("kind", sorted(LONG))
def test_edits_inside_long_statements_are_the_whole_parse(kind):
    original = LONG[kind]
    assert len(chunks(original)) < 8  # a few long statements
    rng = random.Random(kind)
    r = Reparser()
    text = good = original
    patched = steps = 0
    for step in range(40):
        incremental, whole = _parsed(r.parse, text), _parsed(syntax.parse, text)
        assert incremental == whole, text
        if step:
            steps += 1
            patched += r.patched
            if r.patched == r.parsed == 1:  # (after a broken version, other chunks may be new too)
                assert r.parsed_chars < len(text) // 4  # the edited statements, not the chunk
        if not isinstance(whole, list):
            good = text
        text = _inner_edit(rng, good if rng.random() < 0.6 else text)
    assert patched >= steps // 3  # the edits that keep the text valid are mostly parsed in part


def test_an_edit_inside_a_long_concat_parses_the_edited_branch():
    lines = generate("wide", 400).split("\n")
    r = Reparser()
    r.parse("\n".join(lines), "doc.cnn")
    mid = 200

    def edit(at: int, *new: str, remove: int = 1, patched: bool = True) -> None:
        """Replace `remove` lines at `at` by `new` lines, as the last version of the text."""
        lines[at:at + remove] = new
        edited = "\n".join(lines)
        assert _parsed(r.parse, edited) == _parsed(syntax.parse, edited)
        assert r.patched == (1 if patched else 0)
        if patched:
            assert r.parsed == 1 and r.parsed_chars < 100  # of about 6,000

    edit(mid, lines[mid].replace("n=", "n=1"))  # a number: the same lines
    edit(mid, "| conv f=3 n=7 p=same", "", "# a comment", remove=0)  # lines inserted: what follows moves
    edit(mid, remove=3, patched=False)  # deleted again: the version before, reused
    assert r.parsed == 0
    edit(mid, remove=2)  # two branches deleted
    edit(mid, lines[mid] + " -> relu   # now two layers")
    edit(mid, lines[mid].replace("|", " "))  # a `|` taken away: two branches are one
    edit(mid, lines[mid].replace(" ", "| ", 1))  # and put back
    edit(mid, lines[mid].replace("|  conv", "|\tconv"))  # a tab before the branch
    fixed = lines[mid]
    lines[mid] = fixed.replace("n=", "n=(")
    with pytest.raises(CompileError) as e:
        r.parse("\n".join(lines))
    with pytest.raises(CompileError) as full:
        syntax.parse("\n".join(lines))
    assert e.value.diagnostics == full.value.diagnostics
    edit(mid, fixed.replace("n=", "n=12"))  # fixed: parsed in part from the last good version
    edit(3, lines[3].replace("n=", "n=9"))  # the first branch
    edit(len(lines) - 3, lines[-3] + " -> bn")  # the last
    edit(3, "  # before the first branch", remove=0, patched=False)  # next to the `{`: the chunk is parsed


def test_edits_on_the_line_of_a_closing_bracket_move_it_along():
    text = "\n".join(["network t", "input 8x8x4", "block b {", "  relu",
                      "  x = concat { conv f=1 n=1 | conv \"é\" f=1 n=2 } -> residual { conv f=1 n=4 }", "  relu",
                      "  if true { conv f=1 n=3 } else { relu }", "}", "b"])
    r = Reparser()
    r.parse(text)
    for old, new in [("n=2", "n=22"), ("n=4", "n=444"), ("n=3", "n=3 -> bn"), ("n=1 |", "n=1 -> relu |"),
                     ("n=2", "n=2\n    -> relu"), ("{ relu }", "{ relu -> bn }"),
                     ("  relu\n  if", "  relu -> bn\n  if")]:
        edited = text.replace(old, new, 1)
        assert r.parse(edited) == syntax.parse(edited), new
        assert r.patched == 1, new
        text = edited


def test_characters_beyond_ascii_in_a_quoted_path_do_not_stop_the_cuts():
    text = 'network t\nimport "modèles/blocs.cnn"\ninput 8x8x3\nrelu\n'
    assert [line for line, _ in chunks(text)] == [0, 1, 2, 3]


# --- edits of blank and comment lines move the last check (cnndsl.relocate) --------------------------

MOVES = ("", "# a comment", "   ", "# -> ( { | , a comment with punctuation", "\t# tabbed", "#")


def _move(rng: random.Random, text: str) -> str:
    """An edit of blank and comment-only lines only: one inserted anywhere (inside statements too), one
    deleted, or a comment's text changed."""
    lines = text.split("\n")
    blank = [i for i, line in enumerate(lines) if not line.strip() or line.strip().startswith("#")]
    what = rng.choice(["insert", "insert", "delete", "change"]) if blank else "insert"
    if what == "insert":
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(MOVES))
    elif what == "delete" and len(lines) > 1:
        del lines[rng.choice(blank)]
    else:
        lines[rng.choice(blank)] = f"# changed {rng.random()}"
    return "\n".join(lines)


def _everything(m):
    """All a checked model holds, positions included, its costs made."""
    g = m.costed().layer_graph
    return (list(g.nodes(data=True)), list(g.edges(data=True)), dict(g.graph), m.warnings, m.layers, m.totals,
            (m.rf.fields, m.rf.declined, m.rf.covers, m.rf.diagnostics) if m.rf else None, m.sources, m.outputs)


MOVED_CORPUS = [p for p in CORPUS if p.parent.name != "errors"] + \
    [ROOT / "tests" / "errors" / n for n in ("add_mismatch.cnn", "error_in_block.cnn", "several_errors.cnn",
                                              "shape_annotation_in_block.cnn", "odd_size_skip.cnn")]


@pytest.mark.parametrize("spec", MOVED_CORPUS + [f"generated:{k}" for k in ("residual", "concat", "wide", "nested")],
                         ids=lambda p: p if isinstance(p, str) else f"{p.parent.name}/{p.name}")
def test_a_check_moved_by_blank_and_comment_lines_is_the_full_check(spec):
    if isinstance(spec, str):  # multi-line residuals and branches, whose spans run across the edited lines
        original, path, steps = generate(spec.split(":")[1], 120), f"{spec.split(':')[1]}.cnn", 25
    else:
        original, path, steps = spec.read_text(encoding="utf-8"), str(spec), 10
    rng = random.Random(path)
    r = Reparser()
    text = original
    first = analyze(text, path, reparser=r)
    moves = 0
    for _ in range(steps):
        text = _move(rng, text)
        a = analyze(text, path, reparser=r)
        moves += a.moved
        try:
            m = compile_text(text, path, max_layers=50_000, costs=False)
        except CompileError as e:
            assert a.model is None and a.diagnostics == list(e.diagnostics), text
            continue
        assert a.diagnostics == m.warnings, text
        assert _everything(a.model) == _everything(m), text
    assert moves >= 5 or not first.parsed, "the moves were checked again instead of moved"
    # what the editor asks of it later is the full check's too: the AST (parsed when asked), the inlay
    # hints, hover on every layer kind written in it
    assert a.program == syntax.parse(text, path)
    fresh = analyze(text, path, reparser=Reparser())
    assert a.line_shapes == fresh.line_shapes
    for i, line in enumerate(text.split("\n"), 1):
        m = re.search(r"\b(conv|relu|pool|concat|residual|fc)\b", line)
        if m:
            assert hover(a, i, m.start() + 2) == hover(fresh, i, m.start() + 2), (i, line)


def test_a_moved_check_reads_its_imports_again(tmp_path):
    lib = tmp_path / "lib.cnn"
    lib.write_text("block b { conv f=3 n=8 p=same -> relu }\n")
    spec = tmp_path / "spec.cnn"
    text = 'import "lib.cnn"\nimport "missing.cnn"\ninput 8x8x3\nb\n'
    r = Reparser()
    a = analyze(text, str(spec), reparser=r)
    assert [d.code for d in a.diagnostics] == ["import-not-found"]
    (tmp_path / "missing.cnn").write_text("block c { relu }\n")  # the file appears: the same text checks clean
    a = analyze(text + "# a comment\n", str(spec), reparser=r)
    assert not a.moved and a.diagnostics == []
    a = analyze(text + "# a comment\n\n", str(spec), reparser=r)
    assert a.moved and a.diagnostics == []
    lib.write_text("block b { conv f=3 n=16 p=same -> relu }\n")  # an import changed on disk
    a = analyze(text, str(spec), reparser=r)
    assert not a.moved and a.model.layer_graph.nodes["b1.conv1"]["attrs"]["n"] == 16


def test_a_moved_check_keeps_the_playgrounds_sandbox(tmp_path):
    from cnndsl.ir.imports import import_roots

    (tmp_path / "lib.cnn").write_text("block b { relu }\n")
    spec = tmp_path / "spec.cnn"
    text = 'import "lib.cnn"\ninput 8x8x3\nb\n'
    r = Reparser()
    assert analyze(text, str(spec), reparser=r).diagnostics == []
    with import_roots([tmp_path / "elsewhere"]):  # a sandbox that excludes lib.cnn: the same text, a comment added
        a = analyze(text + "# x\n", str(spec), reparser=r)
    assert not a.moved and [d.code for d in a.diagnostics] == ["import-refused", "unknown-layer"]


def test_an_allow_comment_on_a_code_line_is_not_a_move():
    text = "input 9x9x3\nconv f=2 s=2 n=4\n"
    r = Reparser()
    a = analyze(text, "t.cnn", reparser=r)
    assert [d.code for d in a.diagnostics] == ["floor-truncation"]
    a = analyze(text.replace("n=4", "n=4  # allow: floor-truncation"), "t.cnn", reparser=r)
    assert not a.moved and a.diagnostics == []


# --- what a check leaves for the garbage collector (cnndsl.editing.Collector) --------------------------

@pytest.mark.parametrize("spec", [ROOT / "specs" / n for n in ("resnet50.cnn", "inception_v3.cnn", "unet.cnn")]
                         + [ROOT / "tests" / "errors" / n for n in ("add_mismatch.cnn", "residual_needs_projection.cnn",
                                                                   "double_arrow.cnn", "several_errors.cnn")]
                         + [ROOT / "cnndsl" / "blocks" / "resnet.cnn"], ids=lambda p: p.name)
def test_a_check_makes_no_reference_cycles(spec):
    # the editor freezes what a check leaves out of the collector's scans: that is only safe while every
    # version is freed by reference counting, so no check, hover, completion or index may make a cycle
    import gc

    from cnndsl.editing import complete

    text = spec.read_text(encoding="utf-8")
    r = Reparser()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i, t in enumerate((text, text + "\n# a comment", text + "\nrelu", text + "\nrelu\n# a comment")):
            a = analyze(t, str(spec), reparser=r)
            if i % 2:  # what an editor asks of some versions (hover makes the costs); others are only checked
                hover(a, 3, 3)
                complete(a, 3, 3)
                assert a.line_shapes is not None
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith("cnndsl")
                or (type(o).__name__ == "frame" and "cnndsl" in o.f_code.co_filename)]
        assert not ours, [type(o).__name__ for o in ours][:10]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_the_collector_freezes_after_a_check_and_collects_when_idle():
    import gc
    import time

    from cnndsl.editing import Collector

    c = Collector()
    before = gc.get_freeze_count()
    c.checked()  # not a long-running process: nothing frozen
    assert gc.get_freeze_count() == before
    c.enabled, c.IDLE = True, 0.05
    try:
        analyze(generate("residual", 200), "c.cnn", reparser=Reparser())
        c.checked()
        assert gc.get_freeze_count() > before + 1000  # the check's objects, out of the collections
        end = time.monotonic() + 10
        while c.idle_collections == 0 and time.monotonic() < end:
            time.sleep(0.01)
        assert c.idle_collections == 1  # one full collection once the editor is idle
    finally:
        gc.unfreeze()


def test_a_moved_check_sees_an_import_turned_into_a_fifo_or_a_link_loop(tmp_path):
    import os

    lib = tmp_path / "lib.cnn"
    lib.write_text("block b { relu }\n")
    spec = tmp_path / "spec.cnn"
    text = 'import "lib.cnn"\ninput 8x8x3\nb\n'
    r = Reparser()
    assert analyze(text, str(spec), reparser=r).diagnostics == []
    lib.unlink()
    os.mkfifo(lib)  # a check that read it again as a file would hang here
    a = analyze(text + "# x\n", str(spec), reparser=r)
    assert not a.moved and [d.code for d in a.diagnostics][:1] == ["import-not-found"]
    lib.unlink()
    lib.write_text("block b { relu }\n")
    assert analyze(text, str(spec), reparser=r).diagnostics == []
    lib.unlink()
    os.symlink(lib, lib)  # a link to itself
    a = analyze(text + "# y\n", str(spec), reparser=r)
    assert not a.moved and a.diagnostics
