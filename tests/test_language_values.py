"""The language's values: activation parameters, arithmetic and functions (`fn`, the built-ins),
constants (`let`), tables and loops (`for`), conditions (`if`) and the shape functions that let a block
read its input (`channels()`), as seen in the built graph and, for activations, in onnxruntime."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnndsl
from cnndsl.diagnostics import CompileError
from cnndsl.ir import verify


def rows(m):
    return [(r.name, r.shape, r.params) for r in m.layers]


def codes(text: str) -> list[str]:
    with pytest.raises(CompileError) as e:
        cnndsl.compile_text(text)
    return [d.code for d in e.value.diagnostics if d.severity == "error"]


# --- activation parameters --------------------------------------------------------------------


def _run(m, x):
    import onnxruntime as ort

    from cnndsl.backends.onnx import to_onnx

    sess = ort.InferenceSession(to_onnx(m).to_proto().SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_act_with_a_parameter_is_the_standalone_layer():
    """`act=leakyrelu(0.1)` computes what `-> leakyrelu alpha=0.1` computes (and not slope 0.01)."""
    a = cnndsl.compile_text("input 6x6x3\nconv f=3 n=4 act=leakyrelu(0.1)")
    b = cnndsl.compile_text("input 6x6x3\nconv f=3 n=4 -> leakyrelu alpha=0.1")
    c = cnndsl.compile_text("input 6x6x3\nconv f=3 n=4 -> leakyrelu(0.1)")
    d = cnndsl.compile_text("input 6x6x3\nconv f=3 n=4 act=leakyrelu")
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    ya, yb, yc, yd = (_run(m, x) for m in (a, b, c, d))
    np.testing.assert_allclose(ya, yb, rtol=1e-6)
    np.testing.assert_allclose(yc, yb, rtol=1e-6)
    assert not np.allclose(yd, yb)  # the default slope 0.01 differs
    neg = ya < 0
    assert neg.any()
    pre = _run(cnndsl.compile_text("input 6x6x3\nconv f=3 n=4"), x)
    np.testing.assert_allclose(ya[neg], 0.1 * pre[neg], rtol=1e-5)
    assert "leakyrelu(0.1)" in a.layers[0].label


@pytest.mark.parametrize("spec", [
    "defaults leakyrelu alpha=0.1\ninput 6x6x3\nconv f=3 n=4 act=leakyrelu",
    "defaults leakyrelu alpha=0.1\ndefaults conv act=leakyrelu\ninput 6x6x3\nconv f=3 n=4",
    "block b() {\n  defaults leakyrelu alpha=0.1\n  conv f=3 n=4 act=leakyrelu\n}\ninput 6x6x3\nb()",
    "input 6x6x3\nconv f=3 n=4 act=leakyrelu(alpha=0.1)",
])
def test_defaults_of_an_activation_reach_act(spec):
    m = cnndsl.compile_text(spec)
    act = m.graph.nodes[m.layers[0].name]["attrs"]["act"]
    assert act == "leakyrelu" and act.params == {"alpha": 0.1}


def test_a_written_activation_parameter_beats_the_default():
    m = cnndsl.compile_text("defaults leakyrelu alpha=0.1\ninput 6x6x3\nconv f=3 n=4 act=leakyrelu(0.2)")
    assert m.graph.nodes["conv1"]["attrs"]["act"].params == {"alpha": 0.2}


@pytest.mark.parametrize("spec,code", [
    ("input 6x6x3\nconv f=3 n=4 act=leakyrelu(0.1, 0.2)", "unexpected-argument"),
    ("input 6x6x3\nconv f=3 n=4 act=leakyrelu(slope=0.1)", "unknown-param"),
    ("input 6x6x3\nconv f=3 n=4 act=relu(1)", "unexpected-argument"),
    ("input 6x6x3\nconv f=3 n=4 act=leakyrelu(relu)", "bad-param"),
    ("input 6x6x3\nconv f=3 n=conv(3)", "not-a-function"),
])
def test_bad_activation_calls(spec, code):
    assert codes(spec) == [code]


# --- arithmetic and functions ------------------------------------------------------------------


def torchvision_make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible, copied verbatim (the reference)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@pytest.mark.parametrize("v", [3, 8, 10, 12.5, 16 * 0.75, 27.75, 37, 100 * 0.35, 240 * 1.1, 1280 * 0.5, 4.0, 11])
def test_make_divisible_in_the_mobilenet_library_is_torchvisions(v):
    m = cnndsl.compile_text(f"import mobilenet\ninput 4x4x3\nconv f=1 n=make_divisible({v})")
    assert m.layers[0].shape[2] == torchvision_make_divisible(v, 8)
    m = cnndsl.compile_text(f"import mobilenet\ninput 4x4x3\nconv f=1 n=make_divisible({v}, 4, min_value=1)")
    assert m.layers[0].shape[2] == torchvision_make_divisible(v, 4, 1)


@pytest.mark.parametrize("expr,value", [
    ("7 // 2", 7 // 2), ("-7 // 2", -7 // 2), ("7 % 3", 7 % 3), ("7.5 // 2", int(7.5 // 2)),
    ("10 / 4 * 2", 5), ("max(3, 8, 5)", 8), ("min([4, 2, 9])", 2), ("round(2.5)", round(2.5)),
    ("round(3.5)", round(3.5)), ("floor(2.7)", 2), ("ceil(2.1)", 3), ("int(-2.7)", int(-2.7)),
    ("abs(-3)", 3), ("len([1, 2, 3])", 3), ("len(range(2, 9, 3))", len(range(2, 9, 3))),
    ("2 if 3 > 2 else 5", 2), ("2 if 3 > 2 and 1 == 2 else 5", 5), ("2 if not 1 != 1 else 5", 2),
    ("2 if 1 >= 2 or 2 <= 2 else 5", 2), ("ceil(3 * 1.1)", math.ceil(3 * 1.1)),
    ("2 ** 3", 8), ("-2 ** 2", -4), ("2 ** 3 ** 2 // 64", 2 ** 3 ** 2 // 64), ("int(4 ** 0.5)", 2),
    ("round(sqrt(49))", 7), ("round(log(exp(3)))", 3), ("sum([1, 2, 3])", 6), ("len(zip([1, 2], [3, 4]))", 2),
    # RegNet's quantised widths (torchvision BlockParams): round(w0 * wm ** round(log(w / w0) / log(wm)) / 8) * 8
    ("round(24 * 2.49 ** round(log((24 + 36 * 3) / 24) / log(2.49)) / 8) * 8 - 50",
     round(24 * 2.49 ** round(math.log((24 + 36 * 3) / 24) / math.log(2.49)) / 8) * 8 - 50),
])
def test_arithmetic(expr, value):
    m = cnndsl.compile_text(f"input 4x4x3\nconv f=1 n=10 + ({expr})")
    assert m.layers[0].shape[2] == 10 + value


def test_fn_defaults_may_use_earlier_parameters_and_fns_call_fns():
    m = cnndsl.compile_text("""
fn twice(x) = 2 * x
fn f(a, b=twice(a)) = a + b
input 4x4x3
conv f=1 n=f(3) -> conv f=1 n=f(3, b=1)
""")
    assert [r.shape[2] for r in m.layers] == [9, 4]


@pytest.mark.parametrize("spec,code", [
    ("input 4x4x3\nconv f=1 n=nosuch(3)", "unknown-function"),
    ("fn f(x) = f(x)\ninput 4x4x3\nconv f=1 n=f(3)", "recursive-function"),
    ("fn f(x) = x\ninput 4x4x3\nconv f=1 n=f(3, 4)", "unexpected-argument"),
    ("fn f(x) = x\ninput 4x4x3\nconv f=1 n=f()", "missing-argument"),
    ("fn f(x) = x\ninput 4x4x3\nconv f=1 n=f(y=1)", "unknown-argument"),
    ("input 4x4x3\nconv f=1 n=max()", "bad-call"),
    ("input 4x4x3\nconv f=1 n=max(same, 2)", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=3 // 0", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=3 if 2 else 1", "bad-condition"),
    ("input 4x4x3\nconv f=1 n=3 < same", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=len(range(10000000000))", "too-large"),
    ("fn conv(x) = x\ninput 4x4x3\nrelu", "reserved-name"),
    # hostile values: refused with a diagnostic, never a traceback or a hang
    ("\n".join(["fn f0(x) = x"] + [f"fn f{i}(x) = f{i - 1}(x) + f{i - 1}(x)" for i in range(1, 25)]) +
     "\ninput 4x4x3\nconv f=1 n=f24(1)", "too-large"),
    ("input 4x4x3\nconv f=1 n=999999999999999999 ** 30 * 0.5", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=1e308 * 10 // 2", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=ceil(1e308 * 10)", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=10 ** 10 ** 10", "bad-expression"),
    # whole numbers made by multiplying (no power too large): refused before Python cannot print them
    ("input 4x4x3\nlet big = 10 ** 300\nconv f=1 n=" + "*".join(["big"] * 20), "bad-expression"),
    ("input 4x4x3\nlet big = 10 ** 300\nblock b(n) { relu -> relu }\nb(" + "*".join(["big"] * 20) + ")\n"
     "b(" + "*".join(["big"] * 20) + ")", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=sqrt(-1)", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=0 ** -1", "bad-expression"),
    ("input 4x4x3\nconv f=1 n=sum(zip([1], [2, 3]))", "bad-call"),
    ("input 4x4x3\nlet a = [" + ", ".join(["range(900000)"] * 12) + "]\nrelu", "too-large"),
])
def test_bad_functions(spec, code):
    assert code in codes(spec)


# --- constants, tables and loops ---------------------------------------------------------------


def test_a_table_and_a_loop_equal_the_layers_written_out():
    looped = cnndsl.compile_text("""
let stages = [(3, 16, 1), (5, 24, 2), (3, 40, 2)]
input 32x32x3
for (k, c, s) in stages { conv f=k s=s p=same n=c -> relu }
""")
    written = cnndsl.compile_text("""
input 32x32x3
conv f=3 s=1 p=same n=16 -> relu
conv f=5 s=2 p=same n=24 -> relu
conv f=3 s=2 p=same n=40 -> relu
""")
    assert rows(looped) == rows(written)
    verify(looped.graph)


def test_a_table_as_a_block_argument_and_a_file_constant_seen_by_its_blocks():
    m = cnndsl.compile_text("""
let width = 2
block stages(table) { for (c, n) in table { repeat n { conv f=3 p=same n=c * width } } }
input 8x8x3
stages([(4, 2), (8, 1)])
""")
    assert [r.shape[2] for r in m.layers] == [8, 8, 16]
    assert m.graph.graph["scopes"]["stages1"]["label"] == "stages(table=[[4, 2], [8, 1]])"


def test_loop_names_do_not_leak_and_range_counts():
    m = cnndsl.compile_text("input 8x8x3\nfor i in range(3) { conv f=1 n=4 + i }")
    assert [r.shape[2] for r in m.layers] == [4, 5, 6]
    assert "bad-param" in codes("input 8x8x3\nfor i in range(3) { conv f=1 n=4 + i }\nconv f=1 n=i")


def test_named_loops_and_conditions_name_their_layers():
    m = cnndsl.compile_text("input 4x4x3\nx = for i in range(2) { conv f=1 n=4 }\n"
                            "y = if true { conv f=1 n=2 -> relu }\nw = if true { relu }\nconcat(x, y, w)")
    assert [r.name for r in m.layers] == ["x.conv1", "x.conv2", "y.conv1", "y.relu1", "w", "concat1"]


@pytest.mark.parametrize("spec,code", [
    ("input 4x4x3\nfor (a, b) in [(1, 2), (3, 4, 5)] { relu }", "bad-loop"),
    ("input 4x4x3\nfor (a, b) in [1, 2] { relu }", "bad-loop"),
    ("input 4x4x3\nfor a in 3 { relu }", "bad-loop"),
    ("input 4x4x3\nfor conv in [1] { relu }", "reserved-name"),
    ("input 4x4x3\nfor (a, a) in [(1, 1)] { relu }", "duplicate-param"),
    ("input 4x4x3\nlet conv = 3", "reserved-name"),
    ("input 4x4x3\nlet c = channels()\nrelu", "bad-call"),
])
def test_bad_loops_and_constants(spec, code):
    assert code in codes(spec)


# --- conditions and shapes ---------------------------------------------------------------------


def test_a_block_reads_its_input_shape():
    m = cnndsl.compile_text("""
block widen(k=2) { conv f=1 n=k * channels() -> pool f=height() // 2 }
input 8x8x3
widen() -> widen(k=3)
""")
    assert [r.shape for r in m.layers] == [(8, 8, 6), (2, 2, 6), (2, 2, 18), (2, 2, 18)]


def test_if_chooses_a_branch_and_elif_else():
    spec = """
block pick(n) {
  if n == 1 { relu } elif n == 2 { sigmoid } else { tanh }
}
input 4x4x3
pick(1) -> pick(2) -> pick(3)
"""
    assert [r.op for r in cnndsl.compile_text(spec).layers] == ["relu", "sigmoid", "tanh"]


def test_residual_projects_only_when_the_shape_changes():
    spec = """
block basic(n, s=1) {
  residual {
    conv f=3 s=s p=1 n=n -> conv f=3 p=1 n=n
    if s != 1 or channels() != n { shortcut { conv f=1 s=s n=n } }
  }
}
input 16x16x8
basic(8) -> basic(16, s=2) -> basic(16)
"""
    m = cnndsl.compile_text(spec)
    names = [r.name for r in m.layers]
    assert "basic1.shortcut" not in names and "basic3.shortcut" not in names
    assert "basic2.shortcut" in names
    assert m.layer("basic3").shape == (8, 8, 16)
    verify(m.graph)


def test_a_shape_question_after_a_shape_error_reports_the_error_once():
    with pytest.raises(CompileError) as e:
        cnndsl.compile_text("input 4x4x3\nconv f=5 n=8\nconv f=1 n=channels()")
    errors = [d for d in e.value.diagnostics if d.severity == "error"]
    assert [(d.code, d.span.line) for d in errors] == [("shape-mismatch", 2)]


def test_shape_functions_of_a_named_value_and_a_vector():
    m = cnndsl.compile_text("input 8x8x3\na = conv f=1 n=5\ninput -> conv f=1 n=channels(a) -> concat(a)")
    assert m.layers[-1].shape == (8, 8, 10)
    assert "bad-call" in codes("input 10\nfc n=channels()")
    assert cnndsl.compile_text("input 10\nfc n=2 * len(shape())").layers[-1].shape == (2,)


# --- defaults across imports -------------------------------------------------------------------


def test_a_top_level_default_that_misses_an_imported_block_warns_where_it_is_written():
    m = cnndsl.compile_text("import vgg\ndefaults conv bn=true\ninput 32x32x3\nvgg_stage(64, 2)")
    warns = [d for d in m.warnings if d.code == "default-not-imported"]
    assert len(warns) == 1 and warns[0].span.line == 2
    assert not any(d["attrs"]["bn"] for _, d in m.graph.nodes(data=True) if d["op"] == "conv")
    # a default the library already sets to the same value changes nothing: no warning
    m = cnndsl.compile_text("import resnet\ndefaults conv bias=false\ninput 32x32x64\nbasic(64)")
    assert not [d for d in m.warnings if d.code == "default-not-imported"]


# --- start-up ------------------------------------------------------------------------------------


def test_the_analysed_grammar_is_loaded_from_the_cache(tmp_path, monkeypatch):
    """A run after the first loads the LALR tables saved by it (about 10 ms) instead of analysing the grammar
    again (about 120 ms): the saved parser, with the AST builder attached, parses like a fresh one."""
    from cnndsl import syntax

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    syntax.parser.cache_clear()
    try:
        fresh = syntax.parser()
        cache = syntax._cache_file(syntax.grammar_path().read_text(encoding="utf-8"))
        assert cache is not None and cache.is_file() and cache.parent.parent == tmp_path
        loaded = syntax._load_cached(cache)
        assert loaded is not None
        text = (syntax.grammar_path().parent.parent / "specs" / "efficientnet_b0.cnn").read_text()
        assert syntax.parse(text, "a.cnn") == fresh.parse(text) == loaded.parse(text)
    finally:
        syntax.parser.cache_clear()
