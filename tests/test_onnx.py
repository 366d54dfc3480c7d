"""ONNX export: every spec and every layer kind exports a model that passes onnx's full check, whose shapes
ONNX's own inference agrees with, and that onnxruntime runs to the numbers of an independent NumPy oracle."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SPECS
from kinds import KINDS
from numpy_ref import run as reference
from onnx import TensorProto, helper, numpy_helper, shape_inference

import cnndsl
from cnndsl.backends import onnx as ob

# torchvision's classifiers beyond the original zoo are exported and run by tests/test_torchvision_zoo.py (one per
# family here, all with CNNDSL_FULL=1); the largest (regnet_y_128gf, 2.6 GB) exceeds one protobuf message
_TV = json.loads((SPECS.parent / "tests" / "data" / "torchvision_zoo.json").read_text())["models"]
_ORIGINAL = {"alexnet_torchvision", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
             "googlenet", "inception_v3", "mobilenet_v2", "squeezenet1_0", "squeezenet1_1", "densenet121",
             "efficientnet_b0"}
SPEC_FILES = sorted(p for p in SPECS.glob("*.cnn") if p.stem not in _TV or p.stem in _ORIGINAL)
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


# --- every layer kind (its cases in tests/kinds.py), checked against the NumPy oracle ------------

KIND_CASES = [(k, i, s) for k, d in KINDS.items() for i, s in enumerate(d.cases)]


def randomize(proto, model, seed=0) -> dict[str, np.ndarray]:
    """Give every weight the network declares random values (fixed kernels kept, variances positive), so
    that a weight read in the wrong layout or slot shows; constants of the lowerings stay. Returns all by name."""
    rng = np.random.default_rng(seed)
    out = {}
    learned = {e.name for e in ob.expected_weights(model) if e.weight.fixed is None}
    for t in proto.graph.initializer:
        arr = numpy_helper.to_array(t)
        if t.name in learned and t.name.endswith(".var"):  # batch norm's running variance
            arr = rng.uniform(0.5, 2.0, arr.shape).astype(np.float32)
        elif t.name in learned:
            arr = rng.standard_normal(arr.shape).astype(np.float32) * (0.5 if t.name.endswith(".bias") else 1)
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


def test_weights_are_seeded_he_uniform_and_reproducible():
    m = cnndsl.compile_text("input 16x16x8\nconv f=3 n=64 bn=true\nfc 200")
    assert ob.to_onnx(m, seed=3).to_bytes() == ob.to_onnx(m, seed=3).to_bytes()
    assert ob.to_onnx(m, seed=3).to_bytes() != ob.to_onnx(m, seed=4).to_bytes()
    a = ob.to_onnx(m, seed=3).to_proto()
    w = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    # Kaiming uniform (PyTorch's kaiming_uniform_, fan_in, gain sqrt(2)): U(-b, b) with b = sqrt(6 / fan_in), whose
    # variance b^2 / 3 is He's 2 / fan_in
    for name, fan_in, rel in (("conv1.weight", 3 * 3 * 8, 0.05), ("fc1.weight", 14 * 14 * 64, 0.01)):
        x = w[name].astype(np.float64)
        bound = np.sqrt(6 / fan_in)
        assert np.abs(x).max() <= bound and np.abs(x).max() > 0.99 * bound, name  # reaches its bound, never beyond
        # the sample variance is within ~4 standard errors (about 0.9 / sqrt(size) of the variance)
        assert abs(x.var() / (2 / fan_in) - 1) < rel, (name, x.var(), 2 / fan_in)
        assert abs(x.mean()) < 0.05 * bound, name
        # uniform, not normal: half of U(-b, b) lies within b/2 (a normal of the same variance puts 61% there)
        assert abs(np.mean(np.abs(x) < bound / 2) - 0.5) < 0.03, name
    assert (w["conv1.bn.scale"] == 1).all() and (w["conv1.bn.mean"] == 0).all() and (w["conv1.bn.var"] == 1).all()
    assert (w["conv1.bn.bias"] == 0).all()
    assert "conv1.bias" in w and (w["conv1.bias"] == 0).all()  # bias=true is conv's default, next to bn=true
    assert (w["fc1.bias"] == 0).all()


def test_one_fixed_kernel_per_filter_is_that_filters_on_every_channel():
    # `w=[sobel_v, sobel_h]` on a 2-channel input: filter 0 applies sobel_v to both channels, filter 1 sobel_h
    # (docs/language.md: "(n, fh, fw) gives each filter its own kernel")
    from cnndsl.layers import KERNELS

    m = cnndsl.compile_text("input 6x6x2\nconv f=3 n=2 w=[sobel_v, sobel_h] bias=false")
    (e,) = ob.expected_weights(m)
    w = ob.initial_value(e)
    for c in (0, 1):
        np.testing.assert_array_equal(w[0, c], np.array(KERNELS["sobel_v"], np.float32))
        np.testing.assert_array_equal(w[1, c], np.array(KERNELS["sobel_h"], np.float32))
