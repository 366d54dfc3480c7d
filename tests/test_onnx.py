"""ONNX export: every spec and every layer kind exports a model that passes onnx's full check, whose shapes
ONNX's own inference agrees with, and that onnxruntime runs to the numbers of an independent NumPy oracle."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SPECS
from numpy_ref import run as reference
from onnx import TensorProto, helper, numpy_helper, shape_inference

import cnndsl
from cnndsl.backends import onnx as ob
from cnndsl.layers import ACTIVATIONS, INTERNAL, LAYERS

SPEC_FILES = sorted(SPECS.glob("*.cnn"))
BIG = 32e6  # weight bytes above which a spec is exported with zero weights, to keep the suite fast


def dims(vi) -> list:
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def check_shapes(model, proto) -> None:
    """Our value_info covers every intermediate tensor, in NCHW, and ONNX's inference agrees on all."""
    g = model.graph
    produced = {o for n in proto.graph.node for o in n.output}
    outputs = {o.name for o in proto.graph.output}
    ours = {vi.name: dims(vi) for vi in proto.graph.value_info}
    assert set(ours) == produced - outputs, "value_info is not exactly the intermediate tensors"
    for n, d in g.nodes(data=True):
        if n in ours:
            assert ours[n] == ob._nchw(d["shape"]), n
    for o in proto.graph.output:
        assert dims(o) == ob._nchw(g.nodes[o.name]["shape"])
    # ONNX infers every tensor again from the nodes alone (weights as shape-only inputs, no value_info)
    weights = {e.name for e in ob.expected_weights(model)}
    inits = list(proto.graph.initializer)
    bare = helper.make_graph(
        proto.graph.node, "shapes",
        [proto.graph.input[0]] + [helper.make_tensor_value_info(i.name, i.data_type, i.dims) for i in inits
                                  if i.name in weights],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[i for i in inits if i.name not in weights],
    )
    inferred = shape_inference.infer_shapes(
        helper.make_model(bare, opset_imports=proto.opset_import, ir_version=proto.ir_version),
        check_type=True, strict_mode=True, data_prop=True)
    theirs = {vi.name: dims(vi) for vi in [*inferred.graph.value_info, *inferred.graph.output]}
    for name, want in [*ours.items(), *((o.name, dims(o)) for o in proto.graph.output)]:
        got = theirs.get(name)
        if got and isinstance(got[0], str):  # Resize loses the batch's name: any symbolic batch agrees
            got = ["N", *got[1:]]
        assert got == want, f"{name}: ONNX infers {theirs.get(name)}, cnndsl says {want}"


def session(proto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


# --- every spec in specs/ ------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_spec_exports_and_runs(path):
    m = cnndsl.compile_file(path)
    ex = ob.to_onnx(m, init="zeros" if m.totals.weight_bytes > BIG else "he")
    proto = ex.to_proto()
    assert proto.opset_import[0].version == ob.OPSET and proto.ir_version == ob.IR_VERSION
    onnx.checker.check_model(proto, full_check=True)
    check_shapes(m, proto)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == m.outputs
    assert {i.name for i in proto.graph.initializer} >= {e.name for e in ob.expected_weights(m)}
    assert all(n.name.split("/")[0] in m.graph for n in proto.graph.node), "every node is named after its layer"
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["cnndsl.network"] == m.name and props["cnndsl.version"] == cnndsl.__version__
    assert len(props["cnndsl.spec_sha256"]) == 64
    s = session(proto)
    x = np.random.default_rng(0).standard_normal(ob._nchw(m.input_shape, 2), dtype=np.float32)
    for o, y in zip(m.outputs, s.run(None, {"input": x}), strict=True):
        assert list(y.shape) == ob._nchw(m.graph.nodes[o]["shape"], 2)
        assert np.isfinite(y).all()


# --- every layer kind, checked against the NumPy oracle -----------------------------------------

SE = """input 6x6x8
x = conv f=3 n=8 p=same
gate = x -> gap -> conv f=1 n=2 act=relu -> conv f=1 n=8 act=sigmoid
gate2 = x -> gap -> conv f=1 n=8 act=hardsigmoid
mul(gate, gate2, x)
"""

KIND_SPECS: dict[str, list[str]] = {
    "conv": [
        "input 9x11x4\nconv f=3 n=6 s=2 p=1",
        "input 12x10x4\nconv f=3x5 n=6 s=1x2 p=same d=2 g=2 bias=false bn=true act=relu",
        "input 10x9x4\nconv f=4 s=3 p=same n=4 g=4",
        "input 7x7x3\nconv f=1x7 n=4 p=0x3 act=leakyrelu",
        "input 6x6x2\nconv f=3 n=2 w=[sobel_v, sobel_h] bias=false",
        "input 6x6x3\nconv f=3 n=2 w=vertical",
    ],
    "dwconv": ["input 10x10x3\ndwconv f=3 s=2 p=same m=2 bn=true act=relu6",
               "input 7x8x4\ndwconv f=3 d=2 bias=false"],
    "sepconv": ["input 9x9x4\nsepconv f=3 n=8 p=1 bn=true act=relu6",
                "input 8x8x3\nsepconv f=5 s=2 n=4 p=same act=silu"],
    "deconv": [
        "input 5x5x4\ndeconv f=3 s=2 p=1 op=1 n=6",
        "input 4x6x4\ndeconv f=2x3 s=2 n=4 g=2 bias=false bn=true act=relu",
        "input 5x5x2\ndeconv f=3 d=2 s=3 p=2 n=3",
    ],
    "pool": [
        "input 9x9x3\npool f=3 s=2",
        "input 10x10x3\npool avg f=3 s=2 p=1",
        "input 10x10x3\npool f=3 s=2 ceil=true",
        "input 11x11x2\npool avg f=3 s=2 p=1 ceil=true",
        "input 8x9x2\npool avg f=2 ceil=true",
        "input 7x7x2\npool f=3 s=2 p=same",
        "input 7x7x2\npool f=2x3 s=1x2",
    ],
    "gap": ["input 5x7x3\ngap"],
    "fc": ["input 4x5x3\nfc 7", "input 2x2x3\nflatten\nfc 5 act=tanh -> fc 3 bias=false"],
    "flatten": ["input 3x4x2\nflatten -> fc 3"],
    "bn": ["input 6x6x3\nbn", "input 2x2x2\nflatten\nfc 6 -> bn eps=0.001"],
    "lrn": ["input 5x5x7\nlrn size=3 alpha=0.001 beta=0.75 k=2", "input 4x4x6\nlrn"],
    "dropout": ["input 6x6x3\nconv f=3 n=4 -> dropout 0.3 -> relu", "input 2x2x2\nflatten\nfc 4 -> dropout"],
    "identity": ["input 6x6x3\nadd { identity | conv f=3 n=3 p=same }", "input 6x6x3\nidentity"],
    "softmax": ["input 4x4x3\nsoftmax", "input 1x2x5\nflatten\nsoftmax", "input 6x6x2\nconv f=3 n=4 act=softmax"],
    "concat": [
        "input 8x8x3\nconcat { conv f=1 n=2 | conv f=3 n=4 p=same | pool f=3 s=1 p=same }",
        "input 1x2x3\nflatten\nconcat { fc 3 | fc 2 | identity }",
    ],
    "add": [
        "input 6x6x4\nadd { identity | conv f=3 n=4 p=same | conv f=1 n=4 }",
        "input 6x6x4\nresidual { conv f=3 n=4 p=same act=relu -> conv f=3 n=4 p=same }\nrelu",
        "input 8x8x4\nresidual {\n  conv f=3 s=2 n=8 p=1 bn=true act=relu -> conv f=3 n=8 p=same\n"
        "  shortcut { conv f=1 s=2 n=8 bn=true }\n}\nrelu",
    ],
    "mul": [SE, "input 5x5x3\nmul { identity | conv f=3 n=3 p=same act=sigmoid }"],
    "upsample": ["input 3x4x2\nupsample 2", "input 3x4x2\nupsample 3 mode=bilinear"],
    "layernorm": ["input 5x4x6\nconv f=3 n=8 p=1 -> layernorm eps=1e-6", "input 1x2x3\nflatten\nfc 5 -> layernorm"],
    "layerscale": ["input 5x5x3\nconv f=3 n=4 -> layerscale init=0.5", "input 1x2x3\nflatten\nfc 4 -> layerscale"],
    "droppath": ["input 6x6x4\nresidual { conv f=3 n=4 p=1 -> droppath 0.1 }"],
    "split": ["input 6x6x8\nconcat { split 0 | split 1 -> conv f=1 n=4 }", "input 4x4x6\nsplit 2 of=3",
              "input 1x2x3\nflatten\nsplit 1"],
    "shuffle": ["input 5x4x6\nconv f=1 n=6 -> shuffle 2", "input 3x3x12\nshuffle 3 -> conv f=1 n=2"],
    "adaptivepool": ["input 13x13x3\nadaptivepool 6", "input 12x8x2\nadaptivepool 6x4", "input 5x7x2\nadaptivepool 3",
                     "input 2x2x2\nadaptivepool 7", "input 4x4x2\nadaptivepool 4"],
    "prelu": ["input 5x5x3\nconv f=3 n=4 -> prelu", "input 1x2x3\nflatten\nfc 4 -> prelu init=0.1"],
    **{a: [f"input 5x5x3\nconv f=3 n=4 -> {a}", f"input 1x2x3\nflatten\nfc 4 act={a}",
           f"input 5x5x3\nconv f=1 n=2 act={a}"]
       for a in ACTIVATIONS if a != "softmax"},
}
KIND_CASES = [(k, i, s) for k, specs in KIND_SPECS.items() for i, s in enumerate(specs)]


def test_every_kind_has_export_cases():
    """A layer kind without a lowering (and a case here) is a bug: this fails until both exist."""
    assert set(LAYERS) - INTERNAL <= set(KIND_SPECS)


def randomize(proto, model, seed=0) -> dict[str, np.ndarray]:
    """Give every weight random values (variances positive, fixed kernels kept); return them by name."""
    rng = np.random.default_rng(seed)
    out = {}
    fixed = {e.name for e in ob.expected_weights(model) if e.weight.fixed is not None}
    for t in proto.graph.initializer:
        arr = numpy_helper.to_array(t)
        if t.name in fixed:
            pass
        elif t.name.endswith((".weight", ".bias")):
            arr = rng.standard_normal(arr.shape).astype(np.float32) * (0.5 if t.name.endswith(".bias") else 1)
        elif t.name.endswith((".scale", ".mean")):
            arr = rng.standard_normal(arr.shape).astype(np.float32)
        elif t.name.endswith(".var"):
            arr = rng.uniform(0.5, 2.0, arr.shape).astype(np.float32)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
        out[t.name] = arr
    return out


@pytest.mark.parametrize("kind,i,text", KIND_CASES, ids=[f"{k}-{i}" for k, i, _ in KIND_CASES])
def test_kind_matches_numpy_reference(kind, i, text):
    m = cnndsl.compile_text(text)
    assert kind in {d["op"] for _, d in m.graph.nodes(data=True)} or f"act={kind}" in text
    proto = ob.to_onnx(m, seed=1).to_proto()
    onnx.checker.check_model(proto, full_check=True)
    check_shapes(m, proto)
    used = {x for n in proto.graph.node for x in n.input}
    assert {t.name for t in proto.graph.initializer} <= used, "an initializer that no node reads"
    assert not any(n.op_type == "Dropout" for n in proto.graph.node)
    weights = randomize(proto, m)
    x = np.random.default_rng(7).standard_normal(ob._nchw(m.input_shape, 2)).astype(np.float32)
    got = session(proto).run(None, {"input": x})
    want = reference(m, weights, x)
    for o, y in zip(m.outputs, got, strict=True):
        np.testing.assert_allclose(y, want[o], rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want[o]).max())),
                                   err_msg=f"{kind} case {i}: `{o}` differs from the NumPy reference")


def test_dropout_and_identity_add_no_nodes():
    m = cnndsl.compile_text("input 6x6x3\nconv f=3 n=4 -> dropout 0.5 -> identity -> relu")
    proto = ob.to_onnx(m).to_proto()
    assert [n.op_type for n in proto.graph.node] == ["Conv", "Relu"]
    assert proto.graph.node[1].input == ["conv1"]


def test_the_notes_edge_detection():
    m = cnndsl.compile_file(SPECS / "edge_detection.cnn")
    s = session(ob.to_onnx(m).to_proto())
    img = np.load(SPECS / "edge6x6.npy")
    assert img.shape == (6, 6, 1) and (img[:, :3] == 10).all() and (img[:, 3:] == 0).all()
    y = s.run(None, {"input": img.transpose(2, 0, 1)[None]})[0][0, 0]
    np.testing.assert_array_equal(y, np.array([[0, 30, 30, 0]] * 4, np.float32))
    flipped = np.load(SPECS / "edge6x6_flipped.npy")
    y = s.run(None, {"input": flipped.transpose(2, 0, 1)[None]})[0][0, 0]
    np.testing.assert_array_equal(y, np.array([[0, -30, -30, 0]] * 4, np.float32))


@pytest.mark.parametrize("name,kernel", [
    ("vertical", [[1, 0, -1]] * 3), ("horizontal", [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
    ("sobel", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]), ("sobel_h", [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
    ("scharr_h", [[3, 10, 3], [0, 0, 0], [-3, -10, -3]]),
])
def test_named_kernels_are_exported_as_written(name, kernel):
    m = cnndsl.compile_text(f"input 5x5x2\nconv f=3 n=3 w={name} bias=false")
    (w,) = [numpy_helper.to_array(t) for t in ob.to_onnx(m).to_proto().graph.initializer]
    assert w.shape == (3, 2, 3, 3)
    assert (w == np.array(kernel, np.float32)).all()
    assert m.totals.params == 54 and m.totals.trainable_params == 0  # counted, but not trained


def test_weights_are_seeded_he_normal_and_reproducible():
    m = cnndsl.compile_text("input 16x16x8\nconv f=3 n=64 bn=true\nfc 200")
    assert ob.to_onnx(m, seed=3).to_bytes() == ob.to_onnx(m, seed=3).to_bytes()
    assert ob.to_onnx(m, seed=3).to_bytes() != ob.to_onnx(m, seed=4).to_bytes()
    a = ob.to_onnx(m, seed=3).to_proto()
    w = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    assert abs(w["conv1.weight"].std() - np.sqrt(2 / (3 * 3 * 8))) < 0.01
    assert abs(w["fc1.weight"].std() - np.sqrt(2 / (14 * 14 * 64))) < 0.001
    assert (w["conv1.bn.scale"] == 1).all() and (w["conv1.bn.mean"] == 0).all() and (w["conv1.bn.var"] == 1).all()
    assert (w["conv1.bias"] == 0).all() if "conv1.bias" in w else True
    assert (w["fc1.bias"] == 0).all()
