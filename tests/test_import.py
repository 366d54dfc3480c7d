"""`cnndsl import`: ONNX models -> readable specs whose compiled model computes the same outputs.

Models come from cnndsl's own exports (every zoo spec that is small enough) and from torchvision through
PyTorch's exporters, made in the test at small input sizes; each import is checked the way the command
checks it (onnxruntime on the original and on the re-export) and against its parameter count.
"""

from __future__ import annotations

import os
import re

import numpy as np
import onnx
import pytest
from conftest import SPECS
from onnx import TensorProto, helper

import cnndsl
from cnndsl import cli
from cnndsl import onnx_import as oi
from cnndsl.backends import onnx as ob

SMALL = 32e6  # weight bytes: bigger zoo specs are left to the long campaign
ZOO = [p for p in sorted(SPECS.glob("*.cnn")) if cnndsl.compile_file(p).totals.weight_bytes < SMALL or
       os.environ.get("CNNDSL_FULL")]


def _import(path, **kw) -> tuple[oi.Spec, oi.Imported, float]:
    spec = oi.import_model(oi.load(str(path), kw.get("input_shape")), path.stem)
    imp = oi.bind_weights(spec, "<imported>")
    return spec, imp, oi.verify(imp, str(path))


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_every_zoo_export_imports_back_to_the_same_function(path, tmp_path):
    m = cnndsl.compile_file(path)
    model = tmp_path / f"{path.stem}.onnx"
    model.write_bytes(ob.to_onnx(m, seed=1).to_bytes())
    spec, imp, err = _import(model)
    assert err < 1e-5, spec.text
    # the same layers, parameters and MACs as the spec it was exported from
    assert imp.model.totals.params == m.totals.params
    assert imp.model.totals.macs == m.totals.macs
    assert imp.params_onnx == m.totals.params
    assert [r.shape for r in imp.model.layers if r.op != "identity"][-1] == m.layers[-1].shape


def test_the_command_writes_a_spec_and_weights_that_compile_to_the_model(tmp_path, capsys):
    m = cnndsl.compile_file(SPECS / "resnet18.cnn")
    src = tmp_path / "r18.onnx"
    src.write_bytes(ob.to_onnx(m, seed=3).to_bytes())
    assert cli.main(["import", str(src)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'r18.cnn'}" in out and "onnxruntime agrees" in out
    text = (tmp_path / "r18.cnn").read_text()
    assert text.count("residual {") >= 4 and "shortcut {" in text
    # the user's next step, as the command prints it
    dst = tmp_path / "again.onnx"
    assert cli.main(["compile", str(tmp_path / "r18.cnn"), "--weights", str(tmp_path / "r18.npz"),
                     "-o", str(dst)]) == 0
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * float(np.abs(a).max()))


# --- torchvision through PyTorch's exporters ---------------------------------------------------------

# torch is a test dependency (`./dev test` installs it): a missing torch fails here, it never skips
import torch  # noqa: E402
import torchvision  # noqa: E402


def _export(tmp_path, name: str, size: int, dynamo: bool = False):
    """torchvision's model with random weights and random batch-norm statistics (so a wrong epsilon or a
    swapped layer shows), exported as torch.onnx.export writes it."""
    import warnings

    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None).eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    path = tmp_path / f"{name}{'_dynamo' if dynamo else ''}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(m, (torch.randn(1, 3, size, size),), str(path), dynamo=True, opset_version=18,
                              verbose=False)
        else:
            torch.onnx.export(m, (torch.randn(1, 3, size, size),), str(path), dynamo=False, opset_version=17,
                              input_names=["x"], dynamic_axes={"x": {0: "N"}})
    n_params = sum(p.numel() for p in m.parameters())
    return path, n_params


# one model of each family the language can write today, at a small input to keep the run fast
FAMILIES = [("resnet18", 64), ("mobilenet_v2", 64), ("squeezenet1_1", 64), ("googlenet", 64),
            ("efficientnet_b0", 64), ("regnet_x_400mf", 64), ("mnasnet0_5", 64),
            ("shufflenet_v2_x0_5", 64), ("convnext_tiny", 32)]


@pytest.mark.parametrize("name,size", FAMILIES, ids=[n for n, _ in FAMILIES])
def test_torchvision_exports_import_and_compute_the_same(tmp_path, name, size):
    path, _ = _export(tmp_path, name, size)
    spec, imp, err = _import(path)
    assert err < 1e-5, spec.text
    # every weight of the spec is filled from the model (an initializer shared by value between layers, as
    # the exporter deduplicates equal ones, is counted for each layer that uses it)
    assert imp.params_onnx == imp.model.totals.params


def test_convnext_lifts_its_channels_last_block_and_gelu_as_erf(tmp_path):
    """ConvNeXt's block runs channels-last between two permutes (LayerNorm, two Linear layers, GELU), and the
    TorchScript exporter at opset 17 writes GELU as x * 0.5 * (1 + erf(x / sqrt 2)): both come back as
    cnndsl's own kinds, the blocks as one block repeated 3, 3, 9, 3 times (torchvision's convnext_tiny)."""
    path, n_params = _export(tmp_path, "convnext_tiny", 32)
    assert "Erf" in {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    spec, imp, err = _import(path)
    assert err < 1e-5, spec.text
    assert imp.model.totals.params == n_params  # no batch norm to fold: every parameter comes back
    body = re.search(r"residual \{\s*(.*?)\s*\}", spec.text, re.S).group(1)
    # the expansion is 4x the block's width, written as torchvision's `4 * dim`
    assert body == "dwconv f=7 p=3 -> layernorm -> conv f=1 n=4*n act=gelu -> conv f=1 n=n -> layerscale", spec.text
    assert [int(k) for k in re.findall(r"repeat (\d+) \{", spec.text)] == [3, 3, 9, 3], spec.text
    assert "Erf" not in spec.text and "eps=1e-06" in spec.text


def test_resnet50_reads_like_the_zoo(tmp_path):
    # the measure: torchvision's ResNet-50 export in at most 40 lines with its 3, 4, 6, 3 visible
    path, n_params = _export(tmp_path, "resnet50", 64)
    spec, imp, err = _import(path)
    lines = spec.text.strip().splitlines()
    assert len(lines) <= 40, spec.text
    # one bottleneck block, as cnndsl/blocks/resnet.cnn writes it: the stride a parameter at its default,
    # the projection shortcut only where the block changes the shape (layer1's first block at stride 1 too)
    assert "block res(n, s=1) {" in spec.text, spec.text
    assert "if s != 1 or channels() != 4*n { shortcut { conv f=1 s=s n=4*n act=none } }" in spec.text, spec.text
    # and a stage is that block `blocks` times, the first with the stride (the zoo's bottleneck_stage)
    assert "block layer(n, blocks, s=1) { res(n, s=s) -> repeat (blocks - 1) { res(n) } }" in spec.text, spec.text
    assert spec.text.count("block ") == 2, spec.text
    stages = {m.group(1): m.group(2) for m in re.finditer(r"^(layer\d) = (.*)$", spec.text, re.M)}
    assert stages == {"layer1": "layer(64, 3)", "layer2": "layer(128, 4, s=2)", "layer3": "layer(256, 6, s=2)",
                      "layer4": "layer(512, 3, s=2)"}, spec.text
    assert err < 1e-5
    # TorchScript folds batch norm into the convolutions in eval mode: the biases it makes are the only
    # difference from PyTorch's count (conv bias per output channel, minus bn's two vectors per channel)
    assert "folds it into the convolutions" in spec.text


def test_densenet121_reads_like_the_zoo(tmp_path):
    """Each dense layer reads the concatenation of the block's input and every earlier layer's output (one
    ONNX Concat of 1, 2, ..., k inputs a layer): it comes back as the language's own writing, nested
    `concat { identity | layer }` (specs/densenet121.cnn), one block repeated 6, 12, 24, 16 times."""
    path, _ = _export(tmp_path, "densenet121", 64)
    spec, imp, err = _import(path)
    assert err < 1e-5, spec.text
    assert imp.params_onnx == imp.model.totals.params
    assert len(spec.text.strip().splitlines()) <= 40, spec.text
    assert re.search(r"block denselayer \{\s*concat \{ identity \| bn -> relu -> conv f=1 n=128 .*act=relu -> "
                     r"conv f=3 p=1 n=32 \}\s*\}", spec.text), spec.text
    assert [int(k) for k in re.findall(r"= repeat (\d+) \{ denselayer \}", spec.text)] == [6, 12, 24, 16], spec.text
    assert [int(k) for k in re.findall(r"^transition\((\d+)\)$", spec.text, re.M)] == [128, 256, 512], spec.text


def test_the_dynamo_exporters_as_strided_view_is_followed(tmp_path):
    """torchvision's LayerNorm2d on the pooled 1 x 1 map of a ConvNeXt block's channels-last output (its
    classifier) comes out of the dynamo exporter as a Reshape to one dimension and a Gather of every index in
    order (`as_strided`, restoring the strides): a view."""
    import warnings

    from torchvision.models.convnext import CNBlock, LayerNorm2d

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), CNBlock(8, 1e-6, 0.0), torch.nn.AdaptiveAvgPool2d(1),
                            LayerNorm2d(8), torch.nn.Flatten(1), torch.nn.Linear(8, 4)).eval()
    path = tmp_path / "head.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.randn(1, 3, 16, 16),), str(path), dynamo=True, opset_version=18, verbose=False)
    ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
    assert "Gather" in ops, ops  # the exporter's as_strided, which this test is about
    spec, imp, err = _import(path)
    assert err < 1e-5, spec.text
    assert re.search(r"layerscale\s*\}\s*(->)?\s*gap -> layernorm", spec.text), spec.text


def test_a_flattened_concat_of_a_concat_is_nested_again(tmp_path):
    """Exporters flatten Inception-v3's `cat([a(x), cat([c1(b(x)), c2(b(x))])])` into one Concat of three: the
    two inputs that read one value come back as their own `concat`, so the branches nest (no named values)."""
    rng = np.random.default_rng(0)

    def conv(name, cin, cout, k=1):
        return onnx.numpy_helper.from_array(rng.standard_normal((cout, cin, k, k)).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="a"),
             helper.make_node("Conv", ["x", "wb"], ["b"], name="b"),
             helper.make_node("Conv", ["b", "wc1"], ["c1"], name="c1", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["b", "wc2"], ["c2"], name="c2"),
             helper.make_node("Concat", ["a", "c1", "c2"], ["y"], name="cat", axis=1)]
    path = _tiny(tmp_path, nodes, [conv("wa", 3, 4), conv("wb", 3, 5), conv("wc1", 5, 6, 3), conv("wc2", 5, 7)])
    spec, imp, err = _import(path)
    assert err < 1e-5, spec.text
    body = " ".join(spec.text.split("\n")[3:])
    assert re.search(r"concat \{\s*conv f=1 n=4\s*\|\s*conv f=1 n=5\s*-> concat \{ conv f=3 p=1 n=6 \| conv f=1 n=7 \}",
                     body), spec.text


def test_mobilenet_v2_from_the_dynamo_exporter_is_short(tmp_path):
    path, _ = _export(tmp_path, "mobilenet_v2", 64, dynamo=True)
    spec, imp, err = _import(path)
    assert err < 1e-5
    assert len(spec.text.strip().splitlines()) <= 40, spec.text
    assert "block res(" in spec.text and "repeat 3 { res(" in spec.text


# --- what cannot be imported, and hostile files ------------------------------------------------------


def _tiny(tmp_path, nodes, inits=(), shape=(1, 3, 8, 8), name="m.onnx"):
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_ops_it_cannot_express_are_all_listed_and_nothing_is_written(tmp_path, capsys):
    path = _tiny(tmp_path, [helper.make_node("Relu", ["x"], ["a"], name="act"),
                            helper.make_node("Erf", ["a"], ["b"], name="erf1"),
                            helper.make_node("Erf", ["b"], ["c"], name="erf2"),
                            helper.make_node("Transpose", ["c"], ["y"], name="t", perm=[0, 1, 3, 2])])
    assert cli.main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "3 ONNX node(s) cannot be written in cnndsl (Erf x2, Transpose x1)" in err
    assert "`erf1` (Erf)" in err and "`erf2` (Erf)" in err and "`t` (Transpose)" in err
    assert "nothing was written" in err
    assert not (tmp_path / "m.cnn").exists() and not (tmp_path / "m.npz").exists()


def test_a_dynamic_image_size_asks_for_the_flag_then_imports(tmp_path, capsys):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    path = _tiny(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [w],
                 shape=["N", 3, "H", "W"])
    assert cli.main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "dynamic dimension" in err and "--input-shape HxWxC" in err
    assert cli.main(["import", str(path), "--input-shape", "16x16x3"]) == 0
    assert "input 16x16x3" in (tmp_path / "m.cnn").read_text()
    assert "conv f=3 p=1 n=4 bias=false" in (tmp_path / "m.cnn").read_text()


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage" * 10, b"not a model at all"])
def test_a_file_that_is_not_a_model_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    code = cli.main(["import", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "nothing was written" in err


def test_the_model_itself_and_odd_paths_are_refused(tmp_path, capsys):
    m = cnndsl.compile_file(SPECS / "lenet5.cnn")
    src = tmp_path / "l.onnx"
    src.write_bytes(ob.to_onnx(m).to_bytes())
    before = src.read_bytes()
    assert cli.main(["import", str(src), "-o", str(src)]) == 2
    assert "is the model being imported" in capsys.readouterr().err
    assert src.read_bytes() == before
    assert cli.main(["import", str(tmp_path)]) == 2
    assert cli.main(["import", str(tmp_path / "missing.onnx")]) == 2


def _matmul_model(w: onnx.TensorProto, x_dims: list[int]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


ABSURD = {
    # a header declaring 10^12 float32 values (4 TB) over 16 bytes of data
    "huge-weight": (_matmul_model(onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6],
                                                   raw_data=b"\0" * 16), [1, 10**6]), "1,000,000,000,000 elements"),
    # a header that does not match its data (16 declared, 4 held)
    "short-weight": (_matmul_model(onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4],
                                                    raw_data=b"\0" * 16), [1, 4]), "16 elements but holds 4"),
    "negative-dim": (_matmul_model(onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, -4]), [1, 4]),
                     "negative dimension"),
    # a million by a million RGB image: 3 * 10^12 values before the first layer
    "huge-input": (_matmul_model(onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1, 1],
                                                  raw_data=b"\0" * 4), [1, 3, 10**6, 10**6]), "values an image"),
}


@pytest.mark.parametrize("case", ABSURD, ids=list(ABSURD))
def test_absurd_declared_sizes_are_refused_before_allocation(tmp_path, case):
    """Refused in a real process whose address space is capped at 3 GiB: allocating what the header declares
    would fail there (exit 1 with 'out of memory', or a crash), so the message proves it was read first."""
    import subprocess
    import sys

    model, says = ABSURD[case]
    path = tmp_path / "absurd.onnx"
    path.write_bytes(model.SerializeToString())
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
            "from cnndsl import cli; sys.exit(cli.main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "import", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    # the message names what is absurd (main's `cnndsl import` may refuse the declared total first, with
    # "declares ... of tensors": either says so before allocating)
    assert says in r.stderr or "declares" in r.stderr, r.stderr
    assert "out of memory" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "absurd.cnn").exists()


def test_external_data_outside_the_models_folder_is_refused(tmp_path, capsys):
    inner = tmp_path / "m"
    inner.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(108, np.float32).tobytes())
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    path = _tiny(inner, [helper.make_node("Conv", ["x", "w"], ["y"])], [w])
    model = onnx.load(str(path))
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "432")):
        e = t.external_data.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    assert cli.main(["import", str(path)]) == 1
    assert "points outside the model's folder" in capsys.readouterr().err


def test_external_data_that_onnx_refuses_to_read_is_one_error(tmp_path, capsys):
    # onnx refuses a weights file with several hard links (a "hardlink attack"): an error, not a traceback
    w = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    path = _tiny(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"])], [w])
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="m.data",
              size_threshold=0)
    os.link(tmp_path / "m.data", tmp_path / "other.data")
    assert cli.main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "external weights cannot be read" in err and "Traceback" not in err, err
    assert not (tmp_path / "m.cnn").exists()


def test_mutated_models_never_crash_the_importer(tmp_path, capsys):
    # bytes flipped, cut and duplicated in a real export: every answer is an exit code, never a traceback
    base = ob.to_onnx(cnndsl.compile_file(SPECS / "inception_module.cnn")).to_bytes()
    rng = np.random.default_rng(7)
    n = 200 if os.environ.get("CNNDSL_FULL") else 24
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


# --- every layer kind comes back: the importer is the registry's lowering run backwards -----------------

from kinds import KINDS  # noqa: E402

KIND_CASES = [(k, i, s) for k, d in KINDS.items() for i, s in enumerate(d.cases)]


@pytest.mark.parametrize("kind,i,text", KIND_CASES, ids=[f"{k}-{i}" for k, i, _ in KIND_CASES])
def test_every_kinds_export_imports_back(tmp_path, kind, i, text):
    """A kind whose lowering the importer cannot lift back (no `lifts`/`lift` in its registry entry, or one
    that does not accept what `lower` wrote) fails here, naming the kind."""
    m = cnndsl.compile_text(text)
    path = tmp_path / "k.onnx"
    path.write_bytes(ob.to_onnx(m, seed=5).to_bytes())
    try:
        spec, imp, err = _import(path)
    except oi.ImportFailure as e:
        pytest.fail(f"`{kind}` does not import back: {e}: {e.problems}")
    assert err < 1e-5, spec.text
    assert imp.model.totals.params == m.totals.params and imp.model.totals.macs == m.totals.macs, spec.text


# --- the long campaign (CNNDSL_FULL=1): every torchvision CNN classifier, both exporters -------------------

CAMPAIGN = sorted(m for m in torchvision.models.list_models(module=torchvision.models)
                  if not m.startswith(("vit_", "swin_", "maxvit_"))) if os.environ.get("CNNDSL_FULL") else []
# the smallest input each architecture takes: Inception-v3's stem and grid reductions need 75 x 75; the
# TorchScript exporter writes AlexNet's and VGG's adaptive pooling only when 6 x 6 (7 x 7) divides the
# features, which they are at 224
CAMPAIGN_SIZE = {"inception_v3": 96, "alexnet": 224, **{m: 224 for m in CAMPAIGN if m.startswith("vgg")}}


if CAMPAIGN:  # defined only for the long run, so the normal one shows no empty-parameter skips

    @pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
    @pytest.mark.parametrize("name", CAMPAIGN)
    def test_every_torchvision_classifier_imports_and_round_trips(tmp_path, name, dynamo):
        """Outputs within 1e-5 relative of the original in onnxruntime, and every weight of the spec filled
        from the model's initializers (docs/import.md lists what passes and what does not, and why)."""
        import json
        import time

        t0 = time.perf_counter()
        row = {"model": name, "exporter": "dynamo" if dynamo else "torchscript",
               "size": CAMPAIGN_SIZE.get(name, 64)}
        try:
            path, _ = _export(tmp_path, name, row["size"], dynamo=dynamo)
            row["export_s"] = round(time.perf_counter() - t0, 1)
            spec, imp, err = _import(path)
            row.update(lines=len(spec.text.strip().splitlines()), max_rel=err, params=imp.model.totals.params)
            assert err < 1e-5, spec.text
            assert imp.params_onnx == imp.model.totals.params
            row["ok"] = True
        except BaseException as e:
            row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
            raise
        finally:
            row["s"] = round(time.perf_counter() - t0, 1)
            if os.environ.get("CNNDSL_CAMPAIGN_LOG"):  # one JSON line a run, for docs/import.md's table
                with open(os.environ["CNNDSL_CAMPAIGN_LOG"], "a") as f:
                    f.write(json.dumps(row) + "\n")
