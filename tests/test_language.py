"""The language's semantics: chains and line breaks, names, blocks, repeat, residuals, branches, named
values, defaults and imports, as seen in the built graph."""

from __future__ import annotations

import networkx as nx
import pytest

import cnndsl
from cnndsl.ir import inputs_of, verify


def names(m):
    return [r.name for r in m.layers]


def test_the_brief_line_verbatim():
    m = cnndsl.compile_text("input 32x32x3\nconv f=5 s=1 n=6 -> pool f=2 s=2 -> fc 120")
    assert [(r.name, r.shape) for r in m.layers] == [("conv1", (28, 28, 6)), ("pool1", (14, 14, 6)), ("fc1", (120,))]
    verify(m.graph)


def test_line_breaks_and_comments_inside_a_chain():
    one = cnndsl.compile_text("input 32x32x3\nconv f=5 n=6 -> pool f=2 -> fc 10")
    many = cnndsl.compile_text("""
# a comment before anything
input 32x32x3   # trailing comment

conv f=5 n=6 ->     # arrow at the end of a line
  # a comment line inside the chain
  pool f=2
  -> fc 10          # arrow at the start of a line
""")
    assert [(r.name, r.shape, r.params) for r in one.layers] == [(r.name, r.shape, r.params) for r in many.layers]


def test_new_statements_continue_from_the_previous_value():
    a = cnndsl.compile_text("input 32x32x3\nconv f=5 n=6\npool f=2\nfc 10")
    b = cnndsl.compile_text("input 32x32x3\nconv f=5 n=6 -> pool f=2 -> fc 10")
    assert list(a.graph.edges) == list(b.graph.edges)


def test_automatic_names_count_per_kind():
    m = cnndsl.compile_text("input 32x32x3\nconv f=3 n=8 -> relu -> conv f=3 n=8 -> relu")
    assert names(m) == ["conv1", "relu1", "conv2", "relu2"]


def test_named_values_name_their_layers():
    m = cnndsl.compile_text("input 32x32x3\nstem = conv f=3 n=8\nhead = relu -> fc 10")
    assert names(m) == ["stem", "head.relu1", "head.fc1"]


def test_named_values_make_a_dag():
    m = cnndsl.compile_text("""
input 16x16x8
a = conv f=1 n=4
b = input -> conv f=3 p=same n=6
c = concat(a, b) -> conv f=1 n=2
""")
    g = m.graph
    assert inputs_of(g, "c.concat1") == ["a", "b"]  # concat order is the argument order
    assert m.layer("c.concat1").shape == (16, 16, 10)
    assert set(g.successors("input")) == {"a", "b"}  # `input -> conv` names the conv itself


def test_mid_chain_merge_puts_the_chain_first():
    m = cnndsl.compile_text("input 8x8x4\nskip = conv f=1 n=2\nx = input -> conv f=1 n=3 -> concat(skip)")
    assert inputs_of(m.graph, "x.concat1") == ["x.conv1", "skip"]
    assert m.layer("x.concat1").shape == (8, 8, 5)


def test_residual_adds_input_and_body():
    m = cnndsl.compile_text("input 8x8x16\nresidual { conv f=3 p=same n=16 -> relu -> conv f=3 p=same n=16 }")
    g = m.graph
    assert inputs_of(g, "residual1") == ["residual1.conv2", "input"]  # body first, then the shortcut
    assert g.nodes["residual1"]["op"] == "add"
    assert g.graph["scopes"]["residual1"]["kind"] == "residual"
    assert g.nodes["residual1.conv1"]["scope"] == "residual1"


def test_residual_with_projection():
    m = cnndsl.compile_text("""
input 56x56x64
residual {
  conv f=3 s=2 p=1 n=128 -> bn -> relu -> conv f=3 p=1 n=128 -> bn
  shortcut { conv f=1 s=2 n=128 -> bn }
}""")
    assert inputs_of(m.graph, "residual1") == ["residual1.bn2", "residual1.shortcut.bn1"]
    assert m.layer("residual1").shape == (28, 28, 128)
    assert m.layer("residual1.shortcut.conv1").params == 64 * 128 + 128


def test_branches_make_an_inception_module():
    # GoogLeNet inception (3a): 28x28x192 -> 64 + 128 + 32 + 32 = 256 channels
    m = cnndsl.compile_text("""
input 28x28x192
concat {
    conv f=1 n=64
  | conv f=1 n=96 -> conv f=3 n=128 p=same
  | conv f=1 n=16 -> conv f=5 n=32 p=same
  | pool f=3 s=1 p=same -> conv f=1 n=32
}""")
    assert m.layers[-1].name == "concat1"
    assert m.layers[-1].shape == (28, 28, 256)
    assert inputs_of(m.graph, "concat1") == [
        "concat1.branch1", "concat1.branch2.conv2", "concat1.branch3.conv2", "concat1.branch4.conv1"]
    # the paper's inception (3a) parameter count, with biases: 163,696
    assert m.totals.params == 163_696


def test_add_and_mul_branches():
    m = cnndsl.compile_text("input 8x8x16\nadd { identity | conv f=3 p=same n=16 }\n"
                            "mul { identity | gap -> conv f=1 n=4 act=relu -> conv f=1 n=16 act=sigmoid }")
    assert m.layer("add1").shape == (8, 8, 16)
    assert m.layer("mul1").shape == (8, 8, 16)


def test_blocks_with_parameters_defaults_and_expressions():
    m = cnndsl.compile_text("""
input 56x56x64
block unit(n, s=1, k=n*2) { conv f=3 s=s p=same n=n -> conv f=1 n=k }
unit(16)
unit(8, s=2)
unit(n=4, k=3)
""")
    assert names(m) == ["unit1.conv1", "unit1.conv2", "unit2.conv1", "unit2.conv2", "unit3.conv1", "unit3.conv2"]
    assert [m.layer(f"unit{i}.conv2").shape for i in (1, 2, 3)] == [(56, 56, 32), (28, 28, 16), (28, 28, 3)]
    assert m.graph.graph["scopes"]["unit2"]["label"] == "unit(n=8, s=2, k=16)"


def test_block_without_parentheses_and_space_call():
    m = cnndsl.compile_text("input 8x8x3\nblock stem { conv f=3 n=8 -> relu }\nblock w(n) { conv f=1 n=n }\n"
                            "stem\nw n=4")
    assert names(m) == ["stem1.conv1", "stem1.relu1", "w1"]


def test_block_taking_a_value_parameter():
    # a U-Net style up step: the skip tensor is a block argument
    m = cnndsl.compile_text("""
input 32x32x3
block up(skip, n) { deconv f=2 s=2 n=n -> concat(skip) -> conv f=3 p=same n=n }
e1 = conv f=3 p=same n=8
pool f=2
up(e1, 8)
""")
    assert m.layer("up1.concat1").shape == (32, 32, 16)
    assert inputs_of(m.graph, "up1.concat1") == ["up1.deconv1", "e1"]


def test_repeat_unrolls_with_continuing_names():
    m = cnndsl.compile_text("input 8x8x4\nblock u { conv f=3 p=same n=4 }\nrepeat 3 { u }\nstage = repeat 2 { relu }")
    assert names(m) == ["u1", "u2", "u3", "stage.relu1", "stage.relu2"]


def test_single_construct_block_takes_the_block_name():
    m = cnndsl.compile_text("""
input 8x8x4
block basic(n) { residual { conv f=3 p=same n=n -> conv f=3 p=same n=n } }
stage2 = basic(4) -> basic(4)
""")
    assert names(m) == ["stage2.basic1.conv1", "stage2.basic1.conv2", "stage2.basic1",
                        "stage2.basic2.conv1", "stage2.basic2.conv2", "stage2.basic2"]
    scopes = m.graph.graph["scopes"]
    assert scopes["stage2.basic1"]["kind"] == "residual"
    assert scopes["stage2.basic1"]["block"] == "basic"
    assert scopes["stage2.basic1"]["parent"] == "stage2"


def test_defaults_apply_everywhere_and_can_be_overridden():
    m = cnndsl.compile_text("""
input 8x8x4
defaults conv bias=false act=relu
block u { conv f=1 n=4 }
conv f=3 p=same n=4
u
conv f=1 n=2 act=none bias=true
""")
    a = {r.name: m.graph.nodes[r.name]["attrs"] for r in m.layers}
    assert (a["conv1"]["bias"], a["conv1"]["act"]) == (False, "relu")
    assert (a["u1"]["bias"], a["u1"]["act"]) == (False, "relu")
    assert (a["conv2"]["bias"], a["conv2"]["act"]) == (True, "none")


def test_block_level_defaults_stay_in_the_block():
    m = cnndsl.compile_text("input 8x8x4\nblock u { defaults conv f=1\nconv n=3 }\nu\nconv f=3 n=2")
    assert m.graph.nodes["u1"]["attrs"]["f"] == (1, 1)
    assert m.graph.nodes["conv1"]["attrs"]["f"] == (3, 3)


def test_output_statement_and_multiple_outputs():
    m = cnndsl.compile_text("input 8x8x4\nfeat = conv f=3 n=8\nlogits = gap -> fc 10\noutput feat, logits")
    assert m.outputs == ["feat", "logits.fc1"]


def test_unused_values_are_warned_and_left_out():
    m = cnndsl.compile_text("input 8x8x4\nside = conv f=1 n=2\ninput -> conv f=3 n=8")
    assert [w.code for w in m.warnings] == ["unused-value"]
    assert "side" not in m.graph
    assert names(m) == ["conv1"]


def test_imports_relative_and_cycles(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.cnn").write_text("block unit(n) { conv f=1 n=n -> relu }\n")
    main = tmp_path / "net.cnn"
    main.write_text('import "lib/blocks.cnn"\ninput 8x8x3\nunit(4)\n')
    assert names(cnndsl.compile_file(main)) == ["unit1.conv1", "unit1.relu1"]

    (tmp_path / "a.cnn").write_text('import "b.cnn"\nblock a1 { relu }\n')
    (tmp_path / "b.cnn").write_text('import "a.cnn"\nblock b1 { relu }\n')
    cyc = tmp_path / "c.cnn"
    cyc.write_text('import "a.cnn"\ninput 8x8x3\na1\n')
    with pytest.raises(cnndsl.CompileError) as e:
        cnndsl.compile_file(cyc)
    d = e.value.diagnostics[0]
    assert d.code == "import-cycle"
    assert "a.cnn -> b.cnn -> a.cnn" in d.message


def test_imported_file_defaults_apply_to_its_own_blocks_only(tmp_path):
    (tmp_path / "lib.cnn").write_text("defaults conv bias=false\nblock u { conv f=1 n=2 }\n")
    net = tmp_path / "net.cnn"
    net.write_text('import "lib.cnn"\ninput 4x4x2\nu\nconv f=1 n=2\n')
    m = cnndsl.compile_file(net)
    assert m.layer("u1").params == 4 and m.layer("conv1").params == 6


def test_input_override_and_input_as_a_value():
    m = cnndsl.compile_text("input 32x32x3\nconv f=3 n=4", input_shape=(64, 64, 3))
    assert m.layers[0].shape == (62, 62, 4)


def test_graph_invariants_and_attributes():
    m = cnndsl.compile_text("input 16x16x3\nx = conv f=3 p=same n=4\nconcat { identity | conv f=1 n=2 } -> fc 5")
    g = m.graph
    verify(g)
    assert nx.is_directed_acyclic_graph(g)
    d = g.nodes["x"]
    assert d["op"] == "conv" and d["attrs"]["n"] == 4 and d["line"] == 2 and d["col"] == 5
    assert d["shape"] == (16, 16, 4) and d["params"] == 112 and d["macs"] == 27 * 256 * 4
    # branches are the merge's inputs in the order written: slot 0 is the first branch (`identity`), slot 1 the conv
    slots = {u: s for u, _, s in g.in_edges("concat1", data="slot")}
    assert slots == {"concat1.branch1": 0, "concat1.branch2": 1}
    assert [g.nodes[u]["op"] for u in inputs_of(g, "concat1")] == ["identity", "conv"]
    assert m.layer("concat1").shape == (16, 16, 6)  # 4 channels passed through, then the conv's 2


def test_no_code_is_executed_from_a_spec(tmp_path):
    marker = tmp_path / "pwned"
    text = f'input 8x8x3\nconv f=3 n=__import__("os").system("touch {marker}")'
    with pytest.raises(cnndsl.CompileError):
        cnndsl.compile_text(text)
    assert not marker.exists()


def test_rebinding_a_name_grows_a_dense_block():
    # DenseNet-style wiring by hand: each new feature map is concatenated onto everything before it
    m = cnndsl.compile_text("""
input 8x8x4
x = conv f=1 n=4
y = conv f=3 p=same n=2
x = concat(x, y)
y = conv f=3 p=same n=2
x = concat(x, y)
gap -> fc 3
""")
    assert [(r.name, r.shape[-1]) for r in m.layers] == [
        ("x", 4), ("y", 2), ("x_2", 6), ("y_2", 2), ("x_3", 8), ("gap1", 8), ("fc1", 3)]
    assert inputs_of(m.graph, "x_3") == ["x_2", "y_2"]
    assert m.warnings == []
