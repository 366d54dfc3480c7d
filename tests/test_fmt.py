"""`cnndsl fmt` and checked shape annotations: the layout is canonical and idempotent, comments stay, the
meaning never changes (the same AST without positions, the same graph), `--check` fails on files it would
change, `--annotate` writes shapes that `check` then verifies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from specgen import examples, valid_specs

from cnndsl import CompileError, ast, compile_text, syntax
from cnndsl.fmt import _signature, annotate_text, format_text

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "cnndsl" / "blocks").glob("*.cnn")) + sorted(
    (ROOT / "tests" / "errors").glob("*.cnn")) + sorted((ROOT / "tests" / "fuzz_corpus").glob("*.cnn"))


def _strip(x):
    """An AST value without its positions: what the spec means, not where it was written."""
    if dataclasses.is_dataclass(x):
        return (type(x).__name__,) + tuple(_strip(getattr(x, f.name)) for f in dataclasses.fields(x)
                                           if not f.name.endswith("span") and f.name != "file")
    if isinstance(x, tuple):
        return tuple(_strip(v) for v in x)
    return x


def _graph(text: str, path: str):
    """The compiled graph as plain data (layer ids, kinds, parameters, edges, shapes, costs), or None."""
    try:
        m = compile_text(text, path)
    except CompileError:
        return None
    g = m.graph
    nodes = [(n, d["op"], repr(d["attrs"]), d["shape"], d["params"], d["macs"], d["scope"])
             for n, d in g.nodes(data=True)]
    return nodes, sorted((u, v, s) for u, v, s in g.edges(data="slot")), m.outputs


def assert_same_meaning(text: str, path: str = "spec.cnn") -> str:
    out = format_text(text, path)
    assert format_text(out, path) == out, "fmt is not idempotent"
    assert _strip(syntax.parse(out, path)) == _strip(syntax.parse(text, path))
    assert _graph(out, path) == _graph(text, path)
    assert [t for t in _signature(out) if t.startswith("#")] == [t for t in _signature(text) if t.startswith("#")]
    return out


def _parses(p: Path) -> bool:
    try:
        syntax.parse(p.read_text(encoding="utf-8"), str(p))
        return True
    except (CompileError, UnicodeDecodeError):
        return False


@pytest.mark.parametrize("path", [p for p in FILES if _parses(p)], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fmt_keeps_meaning_and_is_idempotent(path):
    assert_same_meaning(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


@examples(normal=30, full=1000)
@given(valid_specs())
def test_fmt_keeps_the_meaning_of_generated_specs(gen):
    messy = gen.text.replace(" -> ", "->").replace("=", " = ").replace("\n", "\n   ")
    try:
        syntax.parse(messy)
    except CompileError:  # ` = ` inside `f = 3` is not the language: keep the generator's own text then
        messy = gen.text
    assert_same_meaning(messy)


def test_canonical_layout():
    messy = (
        "input   32x32x3   # the input\n"
        "\n\n\n"
        "block b(n,s=1){\n"
        "conv f = 3 s=s  n=n*2->relu   # a conv\n"
        "      }\n"
        "x=b(4)->concat{conv f=1 n=2|  conv f=3 p=same n=2 # two\n"
        "| pool f=3 s=1 p=1}\n"
        "a = x\n"
        "   -> conv f=1 n=3\n"
        "concat( a,x ) -> fc 10:10\n"
    )
    assert format_text(messy) == (
        "input 32x32x3   # the input\n"
        "\n"
        "block b(n, s=1) {\n"
        "  conv f=3 s=s n=n*2 -> relu                              # a conv\n"
        "}\n"
        "x = b(4) -> concat { conv f=1 n=2 | conv f=3 p=same n=2   # two\n"
        "  | pool f=3 s=1 p=1 }\n"
        "a = x\n"
        "  -> conv f=1 n=3\n"
        "concat(a, x) -> fc 10 : 10\n"
    )


def test_annotate_writes_and_refreshes_checked_shapes():
    text = "input 32x32x3\nconv f=5 n=6 : 1x1x1   # CONV1\npool f=2 s=2\nfc 10 -> softmax\n"
    out = annotate_text(text)
    assert out == ("input 32x32x3\nconv f=5 n=6 : 28x28x6   # CONV1\npool f=2 s=2 : 14x14x6\n"
                   "fc 10 -> softmax : 10\n")
    compile_text(out)  # the annotations it wrote are checked, and hold
    with pytest.raises(CompileError) as e:
        compile_text(text)
    assert [d.code for d in e.value.diagnostics] == ["shape-annotation"]


def test_annotations_on_branches_blocks_and_vectors_are_checked():
    m = compile_text("input 8x8x3\nblock u(n) { conv f=3 p=same n=n : 8x8x4 }\n"
                     "concat { u(4) | conv f=1 n=2 : 8x8x2 } : 8x8x6 -> gap : 1x1x6 -> fc 3 : 3\n")
    assert m.outputs == ["fc1"]
    with pytest.raises(CompileError) as e:
        compile_text("input 8x8x3\nconcat { conv f=1 n=4 | conv f=1 n=2 } : 8x8x4\n")
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("shape-annotation", 2, 42)


def test_fmt_check_in_ci_passes_on_the_zoo(cli):
    r = cli("fmt", "--check", "specs/", "cnndsl/blocks/")
    assert r.code == 0, r.out + r.err


def test_fmt_check_lists_files_and_fmt_rewrites_them(cli, tmp_path):
    messy = tmp_path / "messy.cnn"
    messy.write_text("input 8x8x3\nconv  f=3 n=4->relu\n")
    tidy = tmp_path / "tidy.cnn"
    tidy.write_text("input 8x8x3\nconv f=3 n=4 -> relu\n")
    r = cli("fmt", "--check", str(tmp_path))
    assert r.code == 1 and r.out == f"would reformat {messy}\n", r.out
    assert messy.read_text() == "input 8x8x3\nconv  f=3 n=4->relu\n"
    r = cli("fmt", str(messy), str(tidy))
    assert r.code == 0 and r.out == f"reformatted {messy}\n"
    assert messy.read_text() == tidy.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messy.cnn", "tidy.cnn"]  # no temporary left


def test_fmt_reports_a_spec_that_does_not_parse(cli, tmp_path):
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 8x8x3\nconv f=3 -> -> relu\n")
    r = cli("fmt", str(bad))
    assert r.code == 1 and "error[missing-layer]" in r.err and "Traceback" not in r.err
    assert bad.read_text() == "input 8x8x3\nconv f=3 -> -> relu\n"
    assert cli("fmt", str(tmp_path / "nope.cnn")).code == 2


def test_ast_annotated_node():
    prog = syntax.parse("input 4x4x1\nconv f=3 n=1 : 2x2x1\n")
    el = prog.stmts[1].chain.elements[0]
    assert isinstance(el, ast.Annotated) and el.dims == (2, 2, 1) and el.shape_span.col == 16


def test_the_readme_fmt_session_is_real_output(tmp_path):
    """The README's `cnndsl fmt` session (`$ cat messy.cnn` ...) replayed: each command's output as shown."""
    import shlex

    from conftest import run_cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    session = readme.split("```console\n$ cat messy.cnn\n", 1)[1].split("```", 1)[0]
    steps = ("$ cat messy.cnn\n" + session).split("\n$ ")
    (tmp_path / "messy.cnn").write_text(steps[0].split("\n", 1)[1].rstrip("\n") + "\n")
    assert len(steps) >= 3
    for step in steps[1:]:
        command, _, shown = step.partition("\n")
        out = ""
        for part in command.split(" && "):
            words = shlex.split(part)
            if words[0] == "cnndsl":
                r = run_cli(*words[1:], cwd=tmp_path)
                out += r.out + r.err
            elif words[0] == "cat":
                out += (tmp_path / words[1]).read_text()
            else:  # sed -i 's/A/B/' FILE: the first A on each line becomes B
                assert words[:2] == ["sed", "-i"], part
                _, a, b, _ = words[2].split("/")
                f = tmp_path / words[3]
                f.write_text("\n".join(line.replace(a, b, 1) for line in f.read_text().split("\n")))
        assert out.rstrip("\n") == shown.rstrip("\n"), command
