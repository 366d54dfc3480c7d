"""The registry walk: every layer kind in cnndsl.layers has its test data (tests/kinds.py), and every CLI
command works on a network that uses it. A kind that is half added (registered but without a case, a
formula, a figure or a generator branch, or one that a command cannot handle) fails here, named."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kinds import KINDS
from specgen import Gen, examples

import cnndsl
from cnndsl import cli
from cnndsl.backends import onnx as ob
from cnndsl.layers import ACTIVATIONS, INTERNAL, LAYERS, fmt_shape

USER_KINDS = sorted(set(LAYERS) - INTERNAL)


# --- the per-kind test data ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", USER_KINDS)
def test_every_kind_has_its_test_data(kind):
    """An ONNX round-trip case, a NumPy formula, a hand-checked figure and a spec-generator branch."""
    d = KINDS.get(kind)
    assert d is not None, (
        f"layer kind `{kind}` has no entry in tests/kinds.py KINDS: add one with its ONNX round-trip cases, "
        "NumPy reference formula, hand-checked figures and spec-generator snippet (the module docstring says how)")
    missing = [what for what, ok in (
        ("an ONNX round-trip case (`cases`)", bool(d.cases)),
        ("a NumPy reference formula (`reference`)", callable(d.reference)),
        ("a hand-checked figure (`figures`)", bool(d.figures)),
        ("a branch in the spec generator (`volume`, `vector` or `merge`)", bool(d.volume or d.vector or d.merge)),
    ) if not ok]
    assert not missing, f"layer kind `{kind}` in tests/kinds.py lacks " + ", ".join(missing)
    for fig in d.figures:
        assert fig.how.strip(), f"a figure of `{kind}` does not say how it was worked out: {fig.spec!r}"


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a != "none"])
def test_every_activation_is_exported_as_act_too(act):
    """What `act=` takes is a kind too: its round-trip cases use it as `act=` on a layer as well as alone."""
    d = KINDS.get(act)
    assert d is not None, f"`act={act}` has no entry in tests/kinds.py: add one with `activation(...)`"
    assert any(f"act={act}" in case for case in d.cases), f"no case of `{act}` in tests/kinds.py uses `act={act}`"
    assert d.points, f"`{act}` in tests/kinds.py has no hand-checked `points`"


def test_no_test_data_for_kinds_that_do_not_exist():
    stale = set(KINDS) - set(USER_KINDS)
    assert not stale, f"tests/kinds.py has entries for kinds the registry does not have: {sorted(stale)}"


@pytest.mark.parametrize("kind", [k for k in USER_KINDS if KINDS.get(k) and (KINDS[k].volume or KINDS[k].vector)])
@examples(normal=12, full=100)
@given(data=st.data())
def test_the_generator_branch_draws_the_kind(kind, data):
    """The kind's snippet writes a layer of that kind, and the output shape it tracked is cnndsl's."""
    d, g = KINDS[kind], Gen(data.draw)
    on_volume = d.volume is not None and (d.vector is None or data.draw(st.booleans()))
    if on_volume:
        h, w, c = (data.draw(st.integers(1, 10)) for _ in range(3))
        mode = data.draw(st.sampled_from(["any", "keep", "down"]))
        made = d.volume.snippet(g, (h, w, c), mode)
        if mode == "any":
            assert made is not None, f"`{kind}`'s volume snippet declines mode `any` on {h}x{w}x{c}"
        if made is None:
            return
        head, (text, want) = f"input {h}x{w}x{c}", made
        if mode == "keep":
            assert want[:2] == (h, w), (kind, text, want)
        if mode == "down":
            assert want[:2] == (-(-h // 2), -(-w // 2)), (kind, text, want)
    else:
        n = data.draw(st.integers(1, 12))
        head, (text, want) = f"input {n}", d.vector.snippet(g, (n,))
    m = cnndsl.compile_text(f"{head}\n{text}\n")
    assert kind in {r.op for r in m.layers}, f"`{kind}`'s snippet wrote `{text}`"
    assert m.layers[-1].shape == tuple(want), f"`{text}`: cnndsl says {m.layers[-1].shape}, the generator {want}"


@pytest.mark.parametrize("kind", [k for k in USER_KINDS if KINDS.get(k) and KINDS[k].merge])
@examples(normal=12, full=100)
@given(data=st.data())
def test_the_generator_merges_with_the_kind(kind, data):
    g = Gen(data.draw)
    vector = data.draw(st.integers(0, 3)) == 0
    shape = (data.draw(st.integers(1, 8)),) if vector else tuple(data.draw(st.integers(1, 8)) for _ in range(3))
    text, want = g.branches(shape, "keep", 0, merge=kind)
    m = cnndsl.compile_text(f"input {'x'.join(map(str, shape))}\n{text}\n")
    assert m.layers[-1].op == kind, text
    assert m.layers[-1].shape == tuple(want), f"`{text}`: cnndsl says {m.layers[-1].shape}, the generator {want}"


# --- every command on every kind -----------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str


def cnndsl_main(*args: str) -> Result:
    """`cnndsl ARGS` in process, as the command line runs it."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


def ok(r: Result, what: str) -> Result:
    assert r.code == 0, f"`cnndsl {what}` exited {r.code}:\n{r.err}"
    return r


def dims(shape) -> str:
    return " x ".join(map(str, ob._nchw(shape, 1)))


@pytest.mark.parametrize("kind", [k for k in USER_KINDS if KINDS.get(k)])
def test_every_command_handles_the_kind(kind, tmp_path):
    spec = tmp_path / f"{kind}.cnn"
    spec.write_text(KINDS[kind].cases[0] + "\n")
    m = cnndsl.compile_file(spec)
    t, names = m.totals, [r.name for r in m.layers]
    weights = ob.expected_weights(m)
    assert kind in {r.op for r in m.layers}, f"{kind}: the first case does not use it"

    r = ok(cnndsl_main("check", spec), "check")
    out_shapes = ", ".join(fmt_shape(m.graph.nodes[o]["shape"]) for o in m.outputs)
    assert ": ok: " in r.out and f"-> {out_shapes}," in r.out and f"{t.params:,} parameters" in r.out, r.out

    r = ok(cnndsl_main("summary", spec), "summary")
    assert all(n in r.out for n in names) and f"{t.params:,}" in r.out, r.out
    doc = json.loads(ok(cnndsl_main("summary", "--json", spec), "summary --json").out)
    assert [(x["name"], x["op"], tuple(x["shape"])) for x in doc["layers"]] == [(r.name, r.op, r.shape)
                                                                                 for r in m.layers]

    r = ok(cnndsl_main("render", spec, "-o", tmp_path / "net.dot"), "render -o net.dot")
    dot = (tmp_path / "net.dot").read_text()
    assert dot.startswith("digraph") and all(f'"{n}"' in dot for n in names), dot[:500]
    if shutil.which("dot"):  # one real Graphviz render per kind
        ok(cnndsl_main("render", spec, "-o", tmp_path / "net.svg"), "render -o net.svg")
        assert "<svg" in (tmp_path / "net.svg").read_text()

    r = ok(cnndsl_main("compile", spec, "-o", tmp_path / "net.onnx"), "compile")
    proto = onnx.load(tmp_path / "net.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert [o.name for o in proto.graph.output] == m.outputs
    inits = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    assert all(inits.get(e.name) == e.weight.shape for e in weights), (inits, weights)

    r = ok(cnndsl_main("weights", spec), "weights")
    rows = {line.split()[0]: line.split() for line in r.out.splitlines()[1:-1]}
    assert list(rows) == [e.name for e in weights], r.out  # every weight, in layer order, nothing else
    for e in weights:  # its shape, its default value as the weight's own Init says it, trainable or not
        line = " ".join(rows[e.name])
        assert rows[e.name][1] == fmt_shape(e.weight.shape) and rows[e.name][-1] == (
            "yes" if e.weight.trainable else "no"), (e.name, r.out)
        assert " ".join(e.weight.init.describe().split()) in line, (e.name, r.out)
    assert r.out.splitlines()[-1].startswith(f"{len(weights)} arrays, {sum(e.weight.size for e in weights):,} numbers")
    ok(cnndsl_main("weights", spec, "-o", tmp_path / "w.npz"), "weights -o w.npz")
    with np.load(tmp_path / "w.npz") as npz:  # the template holds the default values, fixed kernels left out
        assert {k: npz[k].shape for k in npz.files} == {e.name: e.weight.shape for e in weights
                                                        if e.weight.fixed is None}
        for e in weights:
            if e.weight.fixed is None:
                np.testing.assert_array_equal(npz[e.name], ob.initial_value(e), err_msg=e.name)
    # the template goes back in, as `cnndsl weights` tells the user to do
    ok(cnndsl_main("compile", spec, "-o", tmp_path / "again.onnx", "--weights", tmp_path / "w.npz"),
       "compile --weights w.npz")

    for source in (spec, tmp_path / "net.onnx"):
        r = ok(cnndsl_main("run", source, "--repeat", "1"), f"run {Path(source).name}")
        for o in m.outputs:
            assert f"output `{o}`: {dims(m.graph.nodes[o]['shape'])} (" in r.out, r.out


# --- the docs' tables of kinds -------------------------------------------------------------------------


def test_the_kind_tables_in_the_docs_are_the_registry():
    """README.md and docs/language.md list the kinds in tables generated from the registry (docs/gen_kinds.py)."""
    path = Path(__file__).resolve().parent.parent / "docs" / "gen_kinds.py"
    spec = importlib.util.spec_from_file_location("gen_kinds", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for doc, table in gen.DOCS.items():
        text = doc.read_text(encoding="utf-8")
        assert gen.BEGIN in text and gen.END in text, f"{doc.name} lost its `{gen.BEGIN}` markers"
        stale = f"the table of layer kinds in {doc.name} is out of date: run `./dev docs`"
        assert gen.render(text, table) == text, stale
        assert all(f"`{k}" in text.split(gen.BEGIN)[1] for k in USER_KINDS)
