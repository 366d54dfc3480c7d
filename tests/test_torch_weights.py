"""Weights from PyTorch: torchvision's state dicts, as .pth, .safetensors and .npz, mapped onto the zoo specs.

torchvision models are built here with `weights=None` (nothing can be downloaded), given trained-looking
batch norm (random scales and shifts, statistics measured on a calibration batch) so that every tensor matters,
and saved as a user would save them; cnndsl maps the file onto the spec's weights and its ONNX export must then
compute what the torchvision model computes (1e-4 of the largest output, as tests/test_torchvision_zoo.py).
GoogLeNet and Inception-v3 are built with `transform_input=True`, as their pretrained weights are.
torch, torchvision and safetensors are test dependencies (`./dev test` installs them): nothing here skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
from conftest import SPECS
from safetensors.torch import save_file

import cnndsl
from cnndsl import weightfiles as wfs
from cnndsl.backends import onnx as ob
from cnndsl.cli import main

FULL = os.environ.get("CNNDSL_FULL") == "1"

# spec -> (torchvision constructor and keyword arguments, input side used here); one per family in the normal run
FAMILIES = {
    "resnet18": ("resnet18", {}, 64),
    "googlenet": ("googlenet", {"aux_logits": False, "transform_input": True, "init_weights": False}, 64),
    "inception_v3": ("inception_v3", {"aux_logits": False, "transform_input": True, "init_weights": False}, 75),
    "mobilenet_v2": ("mobilenet_v2", {}, 64),
    "squeezenet1_1": ("squeezenet1_1", {}, 64),
    "densenet121": ("densenet121", {}, 32),
    "efficientnet_b0": ("efficientnet_b0", {}, 32),
    "alexnet_torchvision": ("alexnet", {}, 224),
}
MORE = {  # the rest of the zoo's torchvision models: CNNDSL_FULL=1
    "resnet34": ("resnet34", {}, 64), "resnet50": ("resnet50", {}, 64), "resnet101": ("resnet101", {}, 64),
    "resnet152": ("resnet152", {}, 64), "squeezenet1_0": ("squeezenet1_0", {}, 64),
    "vgg16": ("vgg16", {}, 224), "vgg19": ("vgg19", {}, 224),
}


def torchvision_model(fn: str, kw: dict, side: int = 64) -> torch.nn.Module:
    """torchvision's model with trained-looking batch norm (test_torchvision_zoo.randomize_bn: random scales and
    shifts, statistics measured on a calibration batch). Fixed random statistics let Inception-v3's logits come
    out the same for every input, which made its comparison empty."""
    from test_torchvision_zoo import randomize_bn

    torch.manual_seed(0)
    m = getattr(torchvision.models, fn)(weights=None, **kw).eval()
    randomize_bn(m, torch.from_numpy(np.random.default_rng(2).standard_normal((8, 3, side, side), dtype=np.float32)))
    return m


def assert_same_outputs(spec: str, tv: torch.nn.Module, npz: Path, side: int) -> None:
    model = cnndsl.compile_file(SPECS / f"{spec}.cnn")
    model = cnndsl.compile_file(SPECS / f"{spec}.cnn", (side, side, model.input_shape[2]))
    sess = ort.InferenceSession(ob.to_onnx(model, weights=str(npz)).to_bytes(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, side, side)).astype(np.float32)
    (got,) = sess.run(None, {"input": x})
    with torch.no_grad():
        want = tv(torch.from_numpy(x)).numpy()
    err = float(np.abs(got - want).max() / np.abs(want).max())
    # 1e-4 as in test_torchvision_zoo: with a live signal PyTorch's own float32 is 1e-5 from float64 (GoogLeNet)
    assert err <= 1e-4, f"{spec}: largest difference {err:.2e} of the largest output"


def map_to_npz(spec: str, weights: Path, out: Path) -> wfs.Mapping:
    model = cnndsl.compile_file(SPECS / f"{spec}.cnn")
    expected = [(e.name, e.weight.shape) for e in ob.expected_weights(model) if e.weight.fixed is None]
    mapping = wfs.match(expected, wfs.read(str(weights)))
    wfs.save_npz(mapping.pairs, str(out))
    return mapping


CASES = {**FAMILIES, **(MORE if FULL else {})}


@pytest.mark.parametrize("spec", list(CASES))
def test_torchvision_state_dict_gives_torchvisions_outputs(spec, tmp_path):
    fn, kw, side = CASES[spec]
    tv = torchvision_model(fn, kw, side)
    torch.save(tv.state_dict(), tmp_path / "model.pth")
    mapping = map_to_npz(spec, tmp_path / "model.pth", tmp_path / "w.npz")
    assert mapping.how == "by order and shape"  # torchvision's names are not cnndsl's
    assert_same_outputs(spec, tv, tmp_path / "w.npz", side)


# --- the commands, as a user runs them -------------------------------------------------------------------


def lenet_torch() -> torch.nn.Module:
    """LeNet-5 of specs/lenet5.cnn written by hand in PyTorch, with PyTorch's own names."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 5), torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10),
        torch.nn.Softmax(1)).eval()


def test_weights_from_pth_prints_the_mapping_and_writes_the_npz(cli, tmp_path):
    tv = lenet_torch()
    torch.save(tv.state_dict(), tmp_path / "lenet.pth")
    r = cli("weights", SPECS / "lenet5.cnn", "--from", tmp_path / "lenet.pth", "-o", tmp_path / "w.npz")
    assert r.code == 0, r.err
    first = r.out.splitlines()[1].split()
    assert first == ["1", "conv1.weight", "6x3x5x5", "0.weight", "float32"]  # position, names, shape, dtype
    assert "10 tensors mapped by order and shape" in r.out
    w = np.load(tmp_path / "w.npz")
    assert list(w.files) == [e.name for e in ob.expected_weights(cnndsl.compile_file(SPECS / "lenet5.cnn"))]
    np.testing.assert_array_equal(w["fc3.bias"], tv.state_dict()["7.bias"].numpy())
    assert_same_outputs("lenet5", tv, tmp_path / "w.npz", 32)


def test_compile_takes_a_pth_and_says_so(cli, tmp_path):
    torch.save(lenet_torch().state_dict(), tmp_path / "lenet.pth")
    r = cli("compile", SPECS / "lenet5.cnn", "--weights", tmp_path / "lenet.pth", "-o", tmp_path / "m.onnx")
    assert r.code == 0, r.err
    assert "PyTorch state dict" in r.err and "10 tensors mapped by order and shape" in r.err
    assert "weights: from lenet.pth" in r.out


def test_a_mismatch_names_every_position_both_names_and_both_shapes(cli, tmp_path):
    torch.save(torchvision_model("resnet18", {}).state_dict(), tmp_path / "r18.pth")
    r = cli("weights", SPECS / "resnet34.cnn", "--from", tmp_path / "r18.pth", "-o", tmp_path / "w.npz")
    assert r.code == 1 and "Traceback" not in r.err
    assert f"`{tmp_path / 'r18.pth'}` (PyTorch state dict, 102 tensors) does not match the spec's 182" in r.err
    # ResNet-34's conv2_x has 3 blocks where ResNet-18's has 2: conv1 (5 tensors) and two blocks (10 each) agree,
    # and the report starts at the third block's first tensor, #26
    assert "spec #26 `conv2_x.basic3.residual1.conv1.weight` 64x64x3x3: no tensor in the file at this place" in r.err
    assert not (tmp_path / "w.npz").exists()
    r = cli("compile", SPECS / "resnet34.cnn", "--weights", tmp_path / "r18.pth", "-o", tmp_path / "m.onnx")
    assert r.code == 1 and "is a PyTorch state dict; `cnndsl weights" in r.err and not (tmp_path / "m.onnx").exists()


def test_a_pickled_model_is_refused_without_unpickling_it(cli, tmp_path):
    torch.save(lenet_torch(), tmp_path / "whole.pth")  # a whole nn.Module: arbitrary pickled objects
    r = cli("weights", SPECS / "lenet5.cnn", "--from", tmp_path / "whole.pth")
    assert r.code == 1 and "Traceback" not in r.err
    assert "pickled Python objects besides tensors" in r.err and "model.state_dict()" in r.err


def test_safetensors_with_cnndsl_names_maps_by_name_in_every_dtype(tmp_path):
    model = cnndsl.compile_file(SPECS / "residual_block.cnn")
    expected = [(e.name, e.weight.shape) for e in ob.expected_weights(model)]
    g = torch.Generator().manual_seed(0)
    sd = {n: torch.randn(s, generator=g) for n, s in reversed(expected)}  # any order: names decide
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        save_file({k: v.to(dtype) for k, v in sd.items()}, tmp_path / "w.safetensors")
        mapping = wfs.match(expected, wfs.read(str(tmp_path / "w.safetensors")))
        assert mapping.how == "by name"
        for name, t in mapping.pairs:
            np.testing.assert_array_equal(t.load(), sd[name].to(dtype).to(torch.float32).numpy())


def test_safetensors_of_torchvision_names_is_not_guessed(cli, tmp_path):
    save_file(torchvision_model("resnet18", {}).state_dict(), tmp_path / "r18.safetensors")
    r = cli("weights", SPECS / "resnet18.cnn", "--from", tmp_path / "r18.safetensors")
    assert r.code == 1 and "Traceback" not in r.err
    assert "shapes repeat, so cnndsl will not guess" in r.err and "safetensors keeps tensors sorted" in r.err


def test_onnx_model_weights_map_by_name(cli, tmp_path):
    r = cli("compile", SPECS / "lenet5.cnn", "--seed", "7", "-o", tmp_path / "a.onnx")
    assert r.code == 0, r.err
    r = cli("weights", SPECS / "lenet5.cnn", "--from", tmp_path / "a.onnx", "-o", tmp_path / "w.npz")
    assert r.code == 0 and "mapped by name" in r.out, r.err
    model = cnndsl.compile_file(SPECS / "lenet5.cnn")
    w = np.load(tmp_path / "w.npz")
    for e, arr in ob.weight_values(model, seed=7):
        np.testing.assert_array_equal(w[e.name], arr)


def _safetensors(header: str, data: bytes = b"") -> bytes:
    h = header.encode()
    return len(h).to_bytes(8, "little") + h + data


@pytest.mark.parametrize("bad,message", [
    (_safetensors('{"a":1}'), "its header entry is not an object"),
    (b"\xff\xff\xff\xff\x00\x00\x00\x00{", "the safetensors header says"),
    (_safetensors("{x"), "is not JSON"),
    (_safetensors('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}', b"12345678"), "lie outside"),
    (_safetensors('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b"12345678"), "needs 12 bytes"),
    (_safetensors('{"w":{"dtype":"X99","shape":[2],"data_offsets":[0,8]}}', b"12345678"), "dtype 'X99'"),
    (_safetensors('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', b"12345678"), "is not a list of sizes"),
])
def test_broken_safetensors_files_get_a_precise_error(capsys, tmp_path, bad, message):
    (tmp_path / "w.safetensors").write_bytes(bad)
    code = main(["weights", str(SPECS / "lenet5.cnn"), "--from", str(tmp_path / "w.safetensors")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and message in err, err
