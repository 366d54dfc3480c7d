"""Generated architectures agree end to end: for random valid specs (tests/specgen.py), `check` accepts
them with the shapes the generator tracked, the ONNX export passes the full checker, onnxruntime runs it
on a batch of 2 with every intermediate shape cnndsl predicted, and the parameter count is the sum of the
exported weights. Near misses (one parameter changed so the shapes no longer fit) are rejected at the
offending layer."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given
from specgen import examples, near_misses, valid_specs

import cnndsl
from cnndsl import cli
from cnndsl.backends import onnx as onnx_backend

BATCH = 2


def _nchw(shape, batch=BATCH):
    return [batch, shape[2], shape[0], shape[1]] if len(shape) == 3 else [batch, *shape]


def _dims(vi) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]


def _param_sizes(proto: onnx.ModelProto, model: cnndsl.Model) -> tuple[int, int]:
    """(all, non-trainable) parameters read off the exported graph's initializers.

    The weights are the initializers the network declares (`expected_weights`, what `cnndsl weights` lists);
    every other initializer is a constant of a lowering (a clip bound, resize scales), not a parameter.
    """
    inits = {t.name: t for t in proto.graph.initializer}
    expected = {e.name: e.weight for e in onnx_backend.expected_weights(model)}
    for name, w in expected.items():
        assert name in inits, f"weight {name} is not exported"
        assert tuple(inits[name].dims) == w.shape, (name, tuple(inits[name].dims), w.shape)
    read = {x for node in proto.graph.node for x in node.input}
    assert set(inits) <= read, f"initializers that no node reads: {set(inits) - read}"
    for name in set(inits) - set(expected):  # constants are scalars or a few numbers, never a hidden weight
        assert np.prod(inits[name].dims) <= 8, f"initializer {name} {list(inits[name].dims)} is not a declared weight"
    frozen = {n for n, w in expected.items() if not w.trainable}
    # spec-given kernels and batch norm's running statistics are counted, but not trained
    fixed = {f"{n}.weight" for n, d in model.graph.nodes(data=True) if d["attrs"].get("w") is not None}
    stats = {n for n in expected if n.endswith((".mean", ".var"))}
    assert fixed | stats <= frozen, (fixed | stats) - frozen
    size = lambda names: sum(int(np.prod(inits[n].dims)) for n in names)  # noqa: E731
    return size(expected), size(frozen)


def agree_end_to_end(text: str, expected_outputs: list) -> None:
    m = cnndsl.compile_text(text, "gen.cnn")
    assert [m.graph.nodes[o]["shape"] for o in m.outputs] == [tuple(s) for s in expected_outputs]

    proto = onnx_backend.to_onnx(m).to_proto()
    onnx.checker.check_model(proto, full_check=True)

    # the parameter count is what the export holds, trainable and not
    params, frozen = _param_sizes(proto, m)
    assert params == m.totals.params
    assert frozen == m.totals.non_trainable_params

    # every intermediate tensor becomes an extra output, so onnxruntime reports its shape
    declared = {vi.name: _dims(vi) for vi in proto.graph.value_info}
    outputs = [o.name for o in proto.graph.output]
    for name in declared:
        proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(_nchw(m.input_shape), dtype=np.float32)
    results = session.run(None, {onnx_backend.INPUT: x})
    got = {o.name: list(r.shape) for o, r in zip(session.get_outputs(), results, strict=True)}

    for name in outputs:
        assert got[name] == _nchw(m.graph.nodes[name]["shape"]), name
    for name, dims in declared.items():
        assert got[name] == [BATCH if isinstance(d, str) else d for d in dims], name
        if name in m.graph:
            assert got[name] == _nchw(m.graph.nodes[name]["shape"]), name
    # every layer that computes something has its own tensor, so every prediction was checked
    computed = {n for n, d in m.graph.nodes(data=True) if d["op"] not in ("input", "dropout", "identity")}
    assert computed <= set(got), computed - set(got)
    for o, r in zip(session.get_outputs(), results, strict=True):  # the outputs and every intermediate tensor
        assert np.isfinite(r).all(), f"`{o.name}` holds NaN or infinity"


@examples(normal=250, full=5000)
@given(valid_specs())
def test_generated_specs_agree_with_onnxruntime(gen):
    agree_end_to_end(gen.text, gen.outputs)


def _check_json(path) -> tuple[int, list[dict]]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        code = cli.main(["--format", "json", "check", str(path)])
    return code, (json.loads(out.getvalue()) if code == 1 else [])  # JSON diagnostics go to stdout


@examples(normal=150, full=3000)
@given(near_misses())
def test_near_misses_point_at_the_offending_layer(tmp_path_factory, miss):
    path = tmp_path_factory.mktemp("miss") / "miss.cnn"
    path.write_text(miss.text)
    code, diags = _check_json(path)
    assert code == 1, miss.text
    errors = [d for d in diags if d["severity"] == "error"]
    assert errors and all(d["code"] in miss.codes for d in errors), (miss.text, errors)
    for d in errors:  # one thing is wrong, so every error is about it, and nothing cascades
        s = d["span"]
        assert (s["line"], s["col"]) >= miss.start and (s["line"], s["col"]) < miss.end, (miss.text, d)


@pytest.mark.parametrize("text", [
    "input 1x1x1\nconv f=1 n=1\n",
    "input 1\nfc 1\n",
    "input 7x1x1\npool f=3 s=2 p=1 ceil=true\n",
    "input 5x5x2\nconcat { identity | conv f=3 p=same n=1 } -> add { identity | conv f=1 n=3 }\n",
])
def test_tiny_inputs_agree(text):
    m = cnndsl.compile_text(text)
    agree_end_to_end(text, [m.graph.nodes[o]["shape"] for o in m.outputs])
