"""The summary a torchinfo user expects (tree, columns, width, JSON that follows the options), the summary
of a foreign ONNX file, and the Python API a notebook user expects."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from conftest import SPECS, run_cli
from onnx import TensorProto, helper, numpy_helper

import cnndsl

LENET = SPECS / "lenet5.cnn"


def test_small_totals_have_a_space_before_the_unit(spec):
    # 3x3 conv, 1 -> 2 filters, on 4x4x1: 2x2 outputs x 2 filters x 9 = 72 MACs, 144 FLOPs
    out = run_cli("summary", spec("input 4x4x1\nconv f=3 n=2\n")).out
    assert "72 MACs = 144 FLOPs" in out and "72MACs" not in out
    assert "493.92 kMACs = 987.84 kFLOPs" in run_cli("summary", spec("input 32x32x3\nconv f=5 s=1 n=6 -> "
                                                                     "pool f=2 s=2 -> fc 120\n")).out


def test_tree_by_block_with_depth_index():
    out = run_cli("summary", "--tree", "--depth", "1", SPECS / "resnet50.cnn").out
    lines = out.splitlines()
    assert lines[4].startswith("ResNet50 ")
    assert lines[5].startswith("├─conv1: 1-1 ")
    stage = next(x for x in lines if x.startswith("├─conv2_x: 1-3 "))
    # torchvision's layer1: 76,288 + 2 x 71,168 parameters
    assert "bottleneck_stage(n=64, blocks=3, s=1, g=1, w=64): 16 layers" in stage and stage.split()[-2] == "218,624"
    # the first block of a stage projects its shortcut (6 layers), the others add the identity (5)
    assert any(x.startswith("│ ├─bottleneck1: 2-1") and "bottleneck(n=64, s=1, g=1, w=64): 6 layers" in x
               for x in lines)
    assert lines[lines.index(next(x for x in lines if x.startswith("---")), 5) - 1].startswith("└─fc1: 1-")
    # depth 1 shows the blocks one level down folded, no deeper
    assert not any(x.startswith("│ │ ") for x in lines)


def test_readme_summary_example_is_real_output():
    readme = (SPECS.parent / "README.md").read_text()
    shown = readme.split("$ cnndsl summary specs/resnet50.cnn --tree --depth 1 --columns percent\n", 1)[1]
    shown = shown.split("\n...\n```", 1)[0]
    out = run_cli("summary", "specs/resnet50.cnn", "--tree", "--depth", "1", "--columns", "percent",
                  cwd=SPECS.parent).out
    assert out.startswith(shown + "\n")


def test_extra_columns_and_percent():
    out = run_cli("summary", "--columns", "kernel,stride,padding,input,percent", LENET).out
    head = out.splitlines()[2]
    assert re.match(r"layer\s+kind\s+kernel\s+stride\s+padding\s+% params\s+input shape\s+activation shape", head)
    conv1 = next(x for x in out.splitlines() if x.startswith("conv1 "))
    assert "5x5" in conv1 and "0.74%" in conv1 and "(32, 32, 3)" in conv1  # 456 / 62,006 parameters
    fc1 = next(x for x in out.splitlines() if x.startswith("fc1 "))
    assert "77.61%" in fc1  # 48,120 / 62,006
    assert run_cli("summary", "--columns", "kernal", LENET).code == 2


def test_width_fits_a_terminal():
    out = run_cli("summary", "--width", "100", SPECS / "resnet50.cnn").out
    table = out.splitlines()[2:-5]
    assert max(len(x) for x in table) <= 100
    assert "…" in out  # names and kinds are shortened, numbers never
    assert "25,557,032" in out and "4,089,184,256" in out
    assert max(len(x) for x in run_cli("summary", SPECS / "resnet50.cnn").out.splitlines()) > 100  # a pipe: whole


def test_json_reflects_every_option_and_each_layers_parameters():
    doc = json.loads(run_cli("summary", "--json", "--collapse", "--columns", "kernel,percent",
                             SPECS / "resnet152.cnn").out)
    assert doc["options"] == {"collapse": True, "depth": None, "tree": False, "columns": ["kernel", "percent"]}
    assert len(doc["layers"]) == len(cnndsl.compile_file(SPECS / "resnet152.cnn").layers)  # every layer
    conv1 = doc["layers"][0]
    assert conv1["attrs"] == {**conv1["attrs"], "f": [7, 7], "s": [2, 2], "p": [3, 3, 3, 3], "n": 64, "bias": False}
    folded = [r for r in doc["rows"] if r["kind"] == "folded"]
    run = next(r for r in folded if r["label"] == "bottleneck(n=256, g=1, w=64, s=1) × 35")
    assert run["times"] == 35 and run["layers"] == 175
    assert sum(r["params"] for r in doc["rows"]) == doc["totals"]["params"]
    assert doc["rows"][0] == {**doc["rows"][0], "kernel": "7x7", "name": "conv1"}
    tree = json.loads(run_cli("summary", "--json", "--tree", "--depth", "1", SPECS / "resnet50.cnn").out)
    stage = next(r for r in tree["rows"] if r["name"] == "conv2_x")
    assert stage["kind"] == "block" and stage["index"] == "1-3"
    assert [(c["label"], c["index"]) for c in stage["children"]] == [("bottleneck(n=64, s=1, g=1, w=64)", "2-1"),
                                                                    ("bottleneck(n=64, g=1, w=64, s=1) × 2", "2-2")]
    edge = json.loads(run_cli("summary", "--json", SPECS / "edge_detection.cnn").out)
    assert edge["layers"][0]["attrs"]["w"] == "vertical"


def _foreign_model(path):
    """A model written with onnx.helper, not by cnndsl: Conv 3->8, 3x3 on 1x3x32x32, Relu, Flatten, Gemm 7200->10."""
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    fw = numpy_helper.from_array(np.zeros((10, 7200), np.float32), "fw")
    fb = numpy_helper.from_array(np.zeros(10, np.float32), "fb")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])
    g = helper.make_graph(nodes, "foreign", [x], [y], [w, b, fw, fb])
    onnx.save(helper.make_model(g, producer_name="handmade", opset_imports=[helper.make_opsetid("", 17)]), path)


def test_summary_of_a_foreign_onnx_file(tmp_path):
    _foreign_model(tmp_path / "f.onnx")
    r = run_cli("summary", tmp_path / "f.onnx")
    assert r.code == 0, r.err
    rows = {x.split()[0]: x for x in r.out.splitlines() if x[:1].isalpha()}
    # conv: 30x30 outputs x 8 filters x 3x3x3 = 194,400 MACs; 8x27 + 8 = 224 parameters
    assert "(batch, 8, 30, 30)" in rows["conv"] and rows["conv"].split()[-2:] == ["224", "194,400"]
    # fc: 7200 x 10 = 72,000 MACs; 72,010 parameters
    assert rows["fc"].split()[-2:] == ["72,010", "72,000"]
    assert "72,234" in r.out and "266,400" in r.out and "handmade" in r.out
    doc = json.loads(run_cli("summary", "--json", tmp_path / "f.onnx").out)
    assert doc["totals"] == {"params": 72_234, "macs": 266_400, "flops": 532_800, "weight_bytes": 288_936}
    assert [n["op"] for n in doc["nodes"]] == ["Conv", "Relu", "Flatten", "Gemm"]


@pytest.mark.parametrize("spec", ["lenet5", "inception_module", "residual_block"])
def test_summary_of_cnndsls_own_onnx_agrees_with_the_spec(tmp_path, spec):
    out = tmp_path / f"{spec}.onnx"
    assert run_cli("compile", SPECS / f"{spec}.cnn", "-o", out, "--no-weights").code == 0
    doc = json.loads(run_cli("summary", "--json", out).out)
    m = cnndsl.compile_file(SPECS / f"{spec}.cnn")
    assert doc["totals"]["params"] == m.totals.params and doc["totals"]["macs"] == m.totals.macs


def test_summary_of_a_file_that_is_not_onnx(tmp_path):
    (tmp_path / "x.onnx").write_text("input 32x32x3\nconv f=3 n=2\n")
    r = run_cli("summary", tmp_path / "x.onnx")
    assert r.code == 2 and r.out == "" and len(r.err.strip().splitlines()) == 1
    assert "is not an ONNX model" in r.err or "holds no ONNX graph" in r.err


def test_python_api(tmp_path):
    m = cnndsl.compile_file(SPECS / "resnet50.cnn")
    # one short line (it used to hold every source file): parameters with the batch-norm statistics, as the
    # summary's total (torchvision's 25,557,032 trainable + 53,120 running statistics)
    assert repr(m) == f"<cnndsl.Model ResNet50: input 224x224x3, {len(m.layers)} layers, 25,610,152 parameters, " \
                      "4,089,184,256 MACs>"
    assert m.summary().splitlines()[-4] == run_cli("summary", SPECS / "resnet50.cnn").out.splitlines()[-4]
    assert m.summary(collapse=True) == run_cli("summary", "--collapse", SPECS / "resnet50.cnn").out.rstrip("\n")
    small = cnndsl.compile_file(LENET)
    proto = small.to_onnx()
    assert isinstance(proto, onnx.ModelProto) and proto.graph.node[0].op_type == "Conv"
    assert onnx.load_model_from_string(small.to_onnx(as_bytes=True)) == proto
    assert small.to_dot().startswith('digraph "LeNet5"')
    assert small.render(tmp_path / "l.png") == tmp_path / "l.png"
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
    svg = small._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "LeNet5" in svg
    assert small._repr_html_().startswith("<pre>network LeNet5")
    assert small.to_dict()["totals"]["params"] == 62_006
    assert small.layer("conv1").shape == (28, 28, 6)


def test_py_typed_ships():
    import importlib.resources

    assert importlib.resources.files("cnndsl").joinpath("py.typed").is_file()
