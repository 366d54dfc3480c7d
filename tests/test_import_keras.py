"""`cnndsl import` of Keras models exported by tf2onnx: channels-last graphs read as ordinary specs.

The fixtures in tests/data/keras are real exports (TensorFlow 2.21, Keras 3.15, tf2onnx 1.17, opset 13,
random weights and batch-norm statistics), made by tests/data/keras/make_fixtures.py, each with Keras' own
output on an input batch (`NAME.keras_out.npz`). TensorFlow is not needed to run these tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from cnndsl import cli
from cnndsl import onnx_import as oi
from cnndsl.backends import onnx as ob

DATA = Path(__file__).parent / "data" / "keras"
FIXTURES = sorted(p.stem for p in DATA.glob("*.onnx"))


def _import(path: Path, input_shape=None):
    spec = oi.import_model(oi.load(str(path), input_shape), path.stem)
    imp = oi.bind_weights(spec, "<imported>")
    return spec, imp, oi.verify(imp, str(path))


def _ours(imp: oi.Imported, x_nhwc: np.ndarray) -> np.ndarray:
    """The imported spec, compiled with its weights, run in onnxruntime on an N x H x W x C batch."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        npz = f"{tmp}/w.npz"
        np.savez(npz, **imp.weights)
        model = ob.to_onnx(imp.model, weights=npz).to_bytes()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))})[0]


def _file_params(path: Path) -> int:
    """Elements of the file's float weights (tensors of more than one element: Clip's bounds are scalars)."""
    m = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) for t in m.graph.initializer
               if t.data_type == onnx.TensorProto.FLOAT and np.prod(t.dims) > 1)


def test_every_fixture_was_made_by_tf2onnx_and_is_small():
    assert {"keras_small", "keras_small_nchw", "keras_small_raw", "keras_se", "keras_se_raw", "keras_dense4d",
            "mobilenetv2_035_96"} <= set(FIXTURES)
    for name in FIXTURES:
        assert onnx.load(str(DATA / f"{name}.onnx")).producer_name == "tf2onnx"
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 3_000_000


@pytest.mark.parametrize("name", FIXTURES)
def test_each_fixture_imports_and_computes_what_keras_computes(name):
    path = DATA / f"{name}.onnx"
    spec, imp, err = _import(path)
    assert err < 1e-5, spec.text  # onnxruntime on the original file, fed N x H x W x C, vs the import
    ref = np.load(DATA / f"{name}.keras_out.npz")  # Keras' own answer, recorded when the fixture was made
    y = _ours(imp, ref["x"])
    np.testing.assert_allclose(y, ref["y"], rtol=0, atol=1e-5 * float(np.abs(ref["y"]).max()))
    assert imp.params_onnx == imp.model.totals.params  # every weight of the spec filled from the file
    assert spec.layout.input_channels_last == (name != "keras_small_nchw")
    # the raw conversion keeps batch norm's four statistics; Rescaling's and Normalization's constants are
    # fixed numbers in the spec (`affine`), not weights
    if not name.endswith("_raw") and name != "keras_dense4d":
        # tf2onnx writes batch norm after a conv as Mul + Add (2C numbers); the import's `bn` holds 4C
        assert imp.model.totals.params == _file_params(path) + 2 * _mul_add_channels(path), spec.text


def _mul_add_channels(path: Path) -> int:
    """Channels of the batch norms tf2onnx wrote as Mul by a constant [1, C, 1, 1] then Add of one, counted
    in the file itself."""
    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    users = {i: n for n in m.graph.node for i in n.input}
    total = 0
    for n in m.graph.node:
        c = next((inits[i] for i in n.input if i in inits), None)
        add = users.get(n.output[0])
        if n.op_type == "Mul" and c is not None and len(c.dims) == 4 and list(c.dims[2:]) == [1, 1] and \
                add is not None and add.op_type == "Add" and any(i in inits for i in add.input):
            total += c.dims[1]
    return total


def test_the_small_cnn_reads_like_the_keras_code():
    spec, imp, _ = _import(DATA / "keras_small.onnx")
    text = spec.text
    assert "input 32x32x3" in text  # H x W x C, as the Keras Input((32, 32, 3)) says
    # Conv2D -> BatchNormalization -> ReLU as one conv; the strided 'same' conv pads its odd pixel bottom/right
    assert "conv f=3 n=8 bn=true act=relu\n" in text
    assert "pad bottom=1 right=1 -> conv f=3 s=2 n=12 act=relu6" in text
    # the residual block, the two-branch Concatenate, ZeroPadding2D((0, 1), (0, 1)) before the valid dwconv
    assert "residual {\n  dwconv f=3 p=1 bn=true act=silu -> conv f=1 n=12\n}" in text
    assert "concat {" in text and "pool f=3 s=1 p=1 -> conv f=1 n=6 act=relu" in text
    assert "pad bottom=1 right=1\ndwconv f=3 s=2\n" in text
    # MaxPooling2D(2, padding='same') on 5 x 5: -infinity at the bottom/right is ceil mode
    assert "pool f=2 ceil=true" in text
    # Flatten -> Dense(32) -> Dropout -> Dense(10) -> Softmax: the flatten goes into fc, Dropout vanishes
    assert text.rstrip().endswith("fc 32 act=relu\nfc 10 act=softmax")
    assert "channels-last" in text and "x * scale + shift" in text  # the header says what the import did
    assert [r.shape for r in imp.model.layers][-1] == (10,)


def test_the_layout_forms_all_give_the_same_spec():
    """inputs_as_nchw, tf2onnx's optimisers off (a Transpose pair around every conv, batch norm from its
    statistics, Concatenate on axis 3): the same layers as the optimised channels-last export."""
    body = {}
    for name in ("keras_small", "keras_small_nchw", "keras_small_raw"):
        text = _import(DATA / f"{name}.onnx")[0].text
        body[name] = text[text.index("\ninput "):]
    assert body["keras_small_nchw"] == body["keras_small"]
    assert body["keras_small_raw"] == body["keras_small"]
    # the squeeze-and-excitation model: ReduceMean over axes [1, 2] with keepdims, its gate's Mul on N x H x W x C
    se, se_raw = (_import(DATA / f"{name}.onnx")[0].text for name in ("keras_se", "keras_se_raw"))
    assert se[se.index("\ninput "):] == se_raw[se_raw.index("\ninput "):]


def test_flatten_before_dense_is_permuted_into_cnndsl_order():
    """Keras flattens H, W, C; cnndsl (like PyTorch) C, H, W: the Dense rows are reordered, not the data."""
    spec, imp, _ = _import(DATA / "keras_small.onnx")
    m = onnx.load(str(DATA / "keras_small.onnx"))
    w = next(numpy_helper.to_array(t) for t in m.graph.initializer if t.name.endswith("fc1_1/Cast/ReadVariableOp:0"))
    ours = next(v for k, v in imp.weights.items() if v.shape == (32, 3 * 3 * 16) and k.endswith(".weight"))
    # row (h, w, c) of Keras' [H*W*C, 32] kernel is column (c, h, w) of cnndsl's [32, C*H*W] weight
    keras = w.reshape(3, 3, 16, 32)
    assert np.array_equal(ours.reshape(32, 16, 3, 3)[:, 5, 1, 2], keras[1, 2, 5, :])


def test_mobilenet_v2_from_keras_applications():
    spec, imp, err = _import(DATA / "mobilenetv2_035_96.onnx")
    text = spec.text
    assert err < 1e-5
    assert "input 96x96x3" in text
    # Keras' layer names (`block_3_expand`, `block_3_depthwise`, ...) make units; units alike make blocks: the
    # strided ones begin with correct_pad's ((0, 1), (0, 1)) before the valid depthwise conv, the residual ones
    # add their input back
    assert "block unit(n, n2) {\n  conv f=1 n=n -> pad bottom=1 right=1 -> dwconv f=3 s=2 -> conv f=1 n=n2 act=none" \
        in text
    assert "block res(n, n2) {\n  residual {\n    conv f=1 n=n -> dwconv f=3 p=1 -> conv f=1 n=n2 act=none" in text
    # the widths of MobileNetV2 at alpha 0.35 (expansion 6): blocks 1-16, with 2, 3, 2, 2 repeated units
    assert ("blocks = unit(48, 8) -> res(48, 8) -> unit(48, 16) -> repeat 2 { res(96, 16) } -> unit(96, 24)\n"
            "  -> repeat 3 { res(144, 24) } -> unit2(144, 32) -> repeat 2 { res(192, 32) } -> unit(192, 56)\n"
            "  -> repeat 2 { res(336, 56) } -> unit2(336, 112)") in text
    # the depthwise convs' batch norm comes as Mul + Add and folds back into them; ReLU6 is Clip(0, 6)
    assert "defaults dwconv bias=false bn=true act=relu6" in text
    assert text.rstrip().endswith("conv f=1 n=1280\ngap\nfc 10 act=softmax")
    assert len(text.splitlines()) <= 40
    path = DATA / "mobilenetv2_035_96.onnx"
    assert _mul_add_channels(path) > 0 and imp.model.totals.params == _file_params(path) + 2 * _mul_add_channels(path)


def test_keras_se_counts_as_keras_does():
    _, imp, _ = _import(DATA / "keras_se.onnx")
    # by hand, Keras' count of the model in make_fixtures.py: stem 3*3*3*16 + 16 = 448, its batch norm 4*16 = 64,
    # se_reduce 16*4 + 4 = 68, se_expand 4*16 + 16 = 80, conv2 3*3*16*24 + 24 = 3480, head 24*10 + 10 = 250
    assert imp.model.totals.params == 448 + 64 + 68 + 80 + 3480 + 250 == 4390
    text = imp.spec.text
    assert "mul { identity | gap -> conv f=1 n=4 act=relu -> conv f=1 n=16 act=sigmoid }" in text


def test_preprocessing_and_a_dense_on_a_volume():
    """Rescaling(1/127.5, offset=-1) and Normalization(mean, variance) on the N x H x W x C input, before its
    Transpose: one fixed `affine` per channel. Keras' Dense on N x H x W x C is TensorFlow's Tensordot (Reshape
    to [N*H*W, C], MatMul, Reshape back, the sizes computed at run time): a `conv f=1`, after which the
    Flatten -> Dense head is found too."""
    _, imp, _ = _import(DATA / "keras_dense4d.onnx")
    assert imp.spec.layout.input_channels_last
    body = imp.spec.text[imp.spec.text.index("\ninput "):]
    lines = [line for line in body.strip().splitlines() if line]
    assert lines[0] == "input 8x8x3" and lines[1].startswith("affine scale=[")
    assert lines[2:] == ["conv f=3 p=1 n=8 act=relu", "conv f=1 n=6 act=relu", "pool f=2", "fc 5"]
    # (x / 127.5 - 1 - mean) / sqrt(variance), channel by channel, as make_fixtures.py writes the layers
    mean, var = np.array([0.1, -0.2, 0.3]), np.array([0.5, 2.0, 1.5])
    affine = next(r for r in imp.model.layers if r.op == "affine")
    g = imp.model.graph.nodes[affine.name]["attrs"]
    np.testing.assert_allclose(g["scale"], 1 / 127.5 / np.sqrt(var), rtol=1e-6)
    np.testing.assert_allclose(g["shift"], (-1 - mean) / np.sqrt(var), rtol=1e-6)
    # Keras' count, by hand: 3*3*3*8 + 8 = 224, 8*6 + 6 = 54, 4*4*6*5 + 5 = 485 (preprocessing has no weights)
    assert imp.model.totals.params == 224 + 54 + 485 == 763
    # Keras' count, by hand: 3*3*3*8 + 8 = 224, 8*6 + 6 = 54, 4*4*6*5 + 5 = 485
    assert imp.model.totals.params == 224 + 54 + 485 == 763


def test_the_command_imports_a_keras_model_and_the_spec_runs(tmp_path, capsys):
    src = tmp_path / "small.onnx"
    src.write_bytes((DATA / "keras_small.onnx").read_bytes())
    assert cli.main(["import", str(src)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime agrees" in out
    dst = tmp_path / "again.onnx"
    assert cli.main(["compile", str(tmp_path / "small.cnn"), "--weights", str(tmp_path / "small.npz"),
                     "-o", str(dst)]) == 0
    ref = np.load(DATA / "keras_small.keras_out.npz")
    y = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(
        None, {"input": np.ascontiguousarray(ref["x"].transpose(0, 3, 1, 2))})[0]
    np.testing.assert_allclose(y, ref["y"], rtol=0, atol=1e-5 * float(np.abs(ref["y"]).max()))


def _edit(name: str, tmp_path: Path, change) -> Path:
    m = onnx.load(str(DATA / f"{name}.onnx"))
    change(m)
    path = tmp_path / f"{name}_edited.onnx"
    onnx.save(m, str(path))
    return path


def test_a_channels_last_input_of_dynamic_size_takes_the_flag_in_h_w_c(tmp_path, capsys):
    def dynamic(m):
        dims = m.graph.input[0].type.tensor_type.shape.dim
        dims[1].dim_param, dims[2].dim_param = "H", "W"

    path = _edit("keras_se", tmp_path, dynamic)
    assert cli.main(["import", str(path)]) == 1
    assert "--input-shape HxWxC" in capsys.readouterr().err
    assert cli.main(["import", str(path), "--input-shape", "24x24x3"]) == 0
    assert "input 24x24x3" in (tmp_path / "keras_se_edited.cnn").read_text()


def test_same_average_pools_leave_the_padding_out():
    """Keras' AveragePooling2D(padding='same') averages the pixels inside the image only (ONNX
    count_include_pad=0): `count_pad=false`; at stride 2 the odd pixel is at the bottom/right only, which is
    ceil mode (the overflow is not counted either)."""
    text = _import(DATA / "keras_se.onnx")[0].text
    assert "conv f=3 p=1 n=24\npool avg f=3 s=1 p=1 count_pad=false\npool avg f=3 s=2 ceil=true\ngap" in text


def test_an_average_pool_padded_more_at_the_top_is_named(tmp_path, capsys):
    def top(m):
        pool = next(n for n in m.graph.node if n.op_type == "AveragePool" and n.name.endswith("avg_1/AvgPool"))
        for a in list(pool.attribute):
            if a.name == "pads":
                pool.attribute.remove(a)
        pool.attribute.append(helper.make_attribute("pads", [1, 1, 0, 0]))

    path = _edit("keras_se", tmp_path, top)
    assert cli.main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "1 ONNX node(s) cannot be written in cnndsl (AveragePool x1)" in err
    assert "keras_se_1/avg_1/AvgPool" in err and "asymmetric padding [1, 1, 0, 0]" in err
    assert not (tmp_path / "keras_se_edited.cnn").exists()


def test_an_op_on_a_channels_last_tensor_it_cannot_follow_is_named(tmp_path, capsys):
    def softsign(m):  # the raw export's first ReLU runs between Transposes, on N x H x W x C
        relu = next(n for n in m.graph.node if n.op_type == "Relu")
        relu.op_type = "Softsign"

    path = _edit("keras_small_raw", tmp_path, softsign)
    assert cli.main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Softsign x1" in err and "keras_small_1/stem_relu_1/Relu" in err
    assert "Traceback" not in err


def test_mutated_keras_models_never_crash_the_importer(tmp_path, capsys):
    """Bytes flipped, cut and duplicated, and graph edits the layout pass must not get wrong (a permutation
    changed, a pad changed, a node dropped): every answer is an exit code, and an import that succeeds has
    passed the onnxruntime check."""
    base = (DATA / "keras_small.onnx").read_bytes()
    rng = np.random.default_rng(11)
    n = 120 if os.environ.get("CNNDSL_FULL") else 12
    for i in range(n):
        data = bytearray(base)
        how = i % 3
        if how == 0:
            for _ in range(rng.integers(1, 8)):
                data[rng.integers(len(data))] = rng.integers(256)
        elif how == 1:
            data = data[: rng.integers(1, len(data))]
        else:
            a = rng.integers(len(data))
            data = data[:a] + data[a: a + rng.integers(1, 64)] + data[a:]
        path = tmp_path / f"m{i}.onnx"
        path.write_bytes(bytes(data))
        code = cli.main(["import", str(path), "--no-verify"])
        err = capsys.readouterr().err
        assert code in (0, 1, 2), err
        assert "Traceback" not in err and "internal error" not in err, err

    def perm(m):
        t = next(n for n in m.graph.node if n.op_type == "Transpose" and n.input[0] != m.graph.input[0].name)
        t.attribute[0].ints[:] = [0, 1, 3, 2]

    def pads(m):
        p = next(t for t in m.graph.initializer if t.name.startswith("pad_const"))
        p.CopyFrom(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 2, 1], np.int64), p.name))

    def drop(m):
        k = next(i for i, n in enumerate(m.graph.node) if n.op_type == "Clip")
        clip = m.graph.node[k]
        for n in m.graph.node:
            n.input[:] = [clip.input[0] if x == clip.output[0] else x for x in n.input]
        del m.graph.node[k]

    for k, change in enumerate((perm, pads, drop)):
        path = _edit("keras_small", tmp_path, change)
        code = cli.main(["import", str(path), "-o", str(tmp_path / f"e{k}.cnn")])
        captured = capsys.readouterr()
        assert code in (0, 1), captured.err
        assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
        if code == 0:
            assert "onnxruntime agrees" in captured.out
