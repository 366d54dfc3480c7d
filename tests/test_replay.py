"""Replayed block calls (cnndsl.ir.replay) and layers resolved once for the same literal arguments
(cnndsl.ir.args) build the graph that expanding every call and resolving every layer as written builds.

Every spec of the zoo, the golden error cases and the cases below (calls whose input shape changes, calls
that fail on a later iteration, names already taken, limits crossed in the middle of a repeat, ...) is built
both ways; the graphs must be the same node for node, edge for edge, attribute for attribute and in the
same order, with the same diagnostics. The cases also check that replays really happen where they should,
so a replay path that silently never runs fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, SPECS

from cnndsl import syntax
from cnndsl.diagnostics import CompileError
from cnndsl.graph import LayerGraph
from cnndsl.ir.expand import Builder
from cnndsl.model import compile_text

CORPUS = sorted(SPECS.glob("*.cnn")) + sorted((ROOT / "tests" / "errors").glob("*.cnn"))


def _dump(g: LayerGraph):
    """Everything a graph holds, in order: nodes with attributes, edges both ways, graph attributes."""
    return (list(g.nodes(data=True)), [(n, list(g.pred[n].items()), list(g.succ[n].items())) for n in g],
            {k: (list(v.items()) if isinstance(v, dict) else v) for k, v in g.graph.items()})


def _build(text: str, path: str, replays: bool, max_nodes: int = 250_000) -> tuple[Builder, LayerGraph, list]:
    prog = syntax.parse(text, path)
    b = Builder({path: text}, max_nodes)
    if not replays:  # nor the resolved arguments of layers written with literals (cnndsl.ir.args)
        b.replays = b.resolved = None
    g = b.build(prog, None)
    return b, g, b.diags


def _same(text: str, path: str = "spec.cnn", max_nodes: int = 250_000) -> Builder:
    """Build both ways, assert the same result; the builder that replayed (to count its templates)."""
    b, g, d = _build(text, path, True, max_nodes)
    _, h, e = _build(text, path, False, max_nodes)
    assert _dump(g) == _dump(h)
    assert d == e
    return b


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_spec_builds_the_same_graph_with_replays(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        _same(text, str(path))
    except CompileError:  # a golden case that does not parse: nothing to build
        pass


def _replayed(b: Builder) -> int:
    return sum(1 for v in b.replays.values() if v == 2)


DEEP = """\
import resnet
input 32x32x3
conv f=3 n=64 p=same
bottleneck_stage(16, 40, s=1)
basic_stage(64, 30)
gap -> fc 10
"""


def test_a_deep_stage_is_replayed_and_equal():
    b = _same(DEEP)
    # bottleneck_stage's repeat calls bottleneck(16) 39 times: the 2nd records, the other 37 replay
    assert b.templates, "no block call was recorded"
    assert len(b.g) > 300


def test_blocks_that_read_shapes_replay_only_on_the_same_shape():
    # `down` halves the input each time (stride 2 where it is large): its template is keyed by the shape,
    # so most calls run as written; `same` reads no shape and is replayed on any input
    text = """\
input 64x64x8
block down(n) {
  conv f=3 s=2 if height() > 4 else 1 n=n p=same -> relu
}
block same(n) { conv f=1 n=n -> bn -> relu }
repeat 8 { down(8) -> same(8) }
repeat 5 { same(8) }
"""
    b = _same(text)
    templates = list(b.templates.values())
    assert any(t.shape is None for t in templates) and any(t.shape is not None for t in templates)


def test_a_call_that_fails_on_a_later_iteration_reports_it_as_written():
    # the block is fine while the input has fewer than 20 channels; the growing input breaks it later
    text = """\
input 8x8x4
block grow(k) {
  conv f=1 n=(channels() + k if channels() < 20 else 0) -> relu
}
repeat 12 { grow(2) }
"""
    b = _same(text)
    assert any(d.code == "bad-param" for d in b.diags)


def test_names_taken_twice_and_values_passed_in_run_as_written():
    text = """\
input 16x16x8
block twice(n) {
  a = conv f=1 n=n
  a = a -> relu
  a
}
block merge(x, n) { concat(x) -> conv f=1 n=n }
a = twice(8)
a = twice(8)
b = twice(8) -> twice(8) -> twice(8)
c = merge(b, 8) -> merge(b, 8)
concat(a, c) -> repeat 4 { twice(8) }
"""
    _same(text)


def test_limits_crossed_in_the_middle_of_replays_stop_where_they_would():
    text = "import resnet\ninput 16x16x16\nrepeat 300 { bottleneck(4) }\n"
    for limit in (50, 307, 1_000, 1_451):
        b = _same(text, max_nodes=limit)
        assert any(d.code == "too-large" for d in b.diags), limit
    # the expansion budget: repeats of calls of calls
    text = ("input 8x8x4\nblock a { relu }\nblock b { a -> a -> a -> a }\nblock c { b -> b -> b -> b }\n"
            "repeat 3000 { c }\n")
    b = _same(text, max_nodes=30_000)
    assert any(d.code == "too-large" for d in b.diags)


def test_arguments_of_different_types_are_different_calls():
    text = """\
input 8x8x4
block act(x) { leakyrelu alpha=0.1 if x == 1 else 0.2 }
block show(x) { relu -> relu }
repeat 3 { act(1) -> act(1.0) -> act(true) -> show(0.0) -> show(-0.0) -> show(1) -> show(true) }
"""
    b = _same(text)
    labels = [s["label"] for s in b.g.graph["scopes"].values()]
    assert "show(x=0.0)" in labels or "show(x=0)" in labels
    assert any("-0" in lb for lb in labels), labels


def test_loops_functions_defaults_annotations_and_nesting_replay_alike():
    text = """\
input 32x32x8
fn half(x) = x // 2
let table = [(3, 8), (5, 8)]
block inner(n) {
  defaults conv p=same bias=false
  for (k, c) in table { conv f=k n=c : 32x32x8 }
  conv f=1 n=half(n) * 2 -> bn
}
block outer(n, r=2) {
  residual { repeat r { inner(n) } }
  concat { inner(n) | identity } -> conv f=1 n=n
}
stage = repeat 6 { outer(8) }
stage -> repeat 3 { outer(8, r=3) } -> gap -> fc 10 : 10
"""
    b = _same(text)
    assert _replayed(b) >= 3


def test_defaults_that_do_not_reach_imported_blocks_are_reported_once_either_way():
    text = "import resnet\ndefaults conv bias=true\ninput 16x16x16\nrepeat 6 { basic(16, s=1) }\n"
    b = _same(text)
    assert [d.code for d in b.diags].count("default-not-imported") == 1


def test_the_compiled_model_is_the_same_with_replays():
    m = compile_text(DEEP, "deep.cnn")  # the whole pipeline, with its replays
    b, g, _ = _build(DEEP, "deep.cnn", False)
    assert b.replays is None
    # the model's graph is the build without replays, plus what the passes add to each node (shape, costs)
    got = m.layer_graph
    assert list(got) == list(g) and list(got.edges(data=True)) == list(g.edges(data=True))
    assert all(got.nodes[n].items() >= d.items() for n, d in g.nodes(data=True))
    assert [r.name for r in m.layers] == [n for n in g if n != "input"]
    # and the table's totals are its rows' sums
    assert m.totals.params == sum(r.params for r in m.layers) > 0


def test_add_node_from_is_add_node_and_add_edge():
    g, h = LayerGraph(), LayerGraph()
    for x in (g, h):
        x.add_node("a", op="input")
        x.add_node("b", op="relu")
    g.add_node_from("c", {"op": "add"}, [("a", 0), ("b", 1)])
    h.add_node("c", op="add")
    h.add_edge("a", "c", slot=0)
    h.add_edge("b", "c", slot=1)
    assert _dump(g) == _dump(h)
    assert g.edges["a", "c"] is g.pred["c"]["a"]


def test_layers_with_the_same_literal_arguments_resolve_alike(tmp_path):
    # the defaults in force differ between the top level, blocks of this file and an imported file's block;
    # `act=leakyrelu` takes `defaults leakyrelu`; a word argument may be a block parameter or a constant
    (tmp_path / "lib.cnn").write_text("defaults conv bn=true act=relu6\nblock theirs { conv f=3 n=8 p=same }\n")
    text = """\
import resnet
import "lib.cnn"
defaults conv bias=false act=leakyrelu
defaults leakyrelu alpha=0.2
input 16x16x8
let k = 5
block mine(p) {
  conv f=3 n=8 p=same
  conv f=3 n=8 p=p
  defaults conv bn=true
  conv f=3 n=8 p=same
}
conv f=3 n=8 p=same -> conv f=3 n=8 p=same -> conv f=k n=8 p=same
conv f=3 n=8 p=same act=relu -> conv f=3 n=8 p=same act=leakyrelu -> leakyrelu -> leakyrelu 0.1
block other {
  defaults conv act=tanh
  conv f=3 n=8 p=same
}
block plain { conv f=3 n=8 p=same -> relu }
mine(same) -> mine(1) -> basic(8, s=1) -> basic(8, s=1) -> other -> plain -> theirs -> other -> theirs
dropout 0.5 -> dropout 0.5 -> pool f=2 -> pool f=2 s=1 -> pool avg f=2 -> pool avg f=2 s=1
conv 3x3 n=8
conv f=3 n=8 q=1
conv f=3 n=8 q=1
conv f=3 n=0
conv f=3 n=0
conv f=3 n=-0.0
"""
    b = _same(text, str(tmp_path / "spec.cnn"))
    codes = [d.code for d in b.diags]
    assert codes.count("unknown-param") == 2 and codes.count("bad-param") >= 3, codes
    assert b.resolved, "no layer was resolved from the cache"


@pytest.mark.parametrize("kind", ["chain", "residual", "concat", "wide", "nested"])
def test_generated_specs_build_the_same_graph(kind):
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate

    b = _same(generate(kind, 600))
    assert len(b.g) > 500


def test_calls_written_on_many_lines_replay_with_their_own_positions(tmp_path):
    # each call is written on its own line: the replays take their `calls` entry and their scope's line and
    # column from where they are written; `lib`'s residual stands at the same line and column as a call
    (tmp_path / "lib.cnn").write_text("block one(n) {\n  residual { conv f=3 n=n p=same -> relu }\n}\n"
                                      "block two(n) { conv f=1 n=n -> relu }\n")
    lines = ['import "lib.cnn"', "  two(8)", "input 8x8x8"]
    lines += [("  one(8)" if i % 3 else "two(8) -> one(8)") for i in range(40)]
    path = str(tmp_path / "spec.cnn")
    b = _same("\n".join(lines) + "\n", path)
    assert _replayed(b) >= 2
    scopes = b.g.graph["scopes"]
    # `two` makes its own scope, where it is called; `one` is one residual, whose scope is the residual's
    assert (scopes["two15"]["file"], scopes["two15"]["line"], scopes["two15"]["col"]) == (path, 43, 1)
    assert (scopes["one40"]["file"], scopes["one40"]["line"], scopes["one40"]["col"]) == (
        str(tmp_path / "lib.cnn"), 2, 3)
    assert b.g.nodes["one40.conv1"]["calls"][-1][1].line == 43
