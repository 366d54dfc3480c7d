"""`cnndsl compile --to pytorch`: the generated nn.Module file, run in real PyTorch.

Every zoo spec and every layer-kind case of test_onnx.py is generated, imported from its file, given the same
weights as cnndsl's ONNX export, and must compute what onnxruntime computes (1e-5, relative to the output's
largest value) with as many parameters as the summary counts; LeNet-5 trains. torch is a test dependency
(`./dev test` installs it): these tests never skip.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_onnx import KIND_CASES

import cnndsl
from cnndsl.backends import onnx as ob
from cnndsl.backends.pytorch import to_pytorch
from cnndsl.layers import INTERNAL, LAYERS

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = sorted(p.stem for p in SPECS.glob("*.cnn"))
# Smaller inputs (every layer, every kind and block, a fraction of the time): behind a global average pool the
# weights are the same; VGG's and AlexNet's first fc layer shrinks with the input (1x1x512 and 1x1x256 there).
SMALL = {"vgg16": 32, "vgg19": 32, "alexnet": 67, "alexnet_torchvision": 64, "inception_v3": 75, "googlenet": 32,
         "resnet18": 32, "resnet34": 32, "resnet50": 32, "resnet101": 32, "resnet152": 32, "mobilenet_v1": 32,
         "mobilenet_v2": 32, "squeezenet1_0": 32, "squeezenet1_1": 32, "densenet121": 32, "efficientnet_b0": 32,
         "unet": 32}


def load_module(source: str, path: Path):
    """Write the generated source to a file and import it, as a user would."""
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod





def weights_for(model, seed: int = 1) -> dict[str, np.ndarray]:
    """cnndsl's default weights, with batch norm made non-trivial (random scale, shift and statistics)."""
    rng = np.random.default_rng(seed)
    out = {}
    for e, arr in ob.weight_values(model, seed):
        if e.weight.fixed is not None:
            continue
        if e.name.endswith((".scale",)) or e.name == "scale":
            arr = rng.uniform(0.5, 1.5, arr.shape).astype(np.float32)
        elif e.name.endswith((".mean", ".bias")):
            arr = rng.normal(0, 0.1, arr.shape).astype(np.float32)
        elif e.name.endswith(".var"):
            arr = rng.uniform(0.5, 2.0, arr.shape).astype(np.float32)
        out[e.name] = arr
    return out


def generated(model, tmp_path: Path):
    mod = load_module(to_pytorch(model), tmp_path / f"gen_{abs(hash(model.path)) % 10**8}.py")
    net = mod.Model()
    return net


def check_against_onnxruntime(model, tmp_path: Path, batch: int = 2, random_bn: bool = True,
                              rtol: float = 1e-5) -> torch.nn.Module:
    """The generated module, given the weights of cnndsl's ONNX export, computes what onnxruntime does.

    `random_bn`: batch norm gets random scale, shift and statistics (through an .npz, as a user brings trained
    weights); else both take cnndsl's default weights (He uniform; ones and zeros for batch norm, which still
    tells every batch norm tensor from the others), which spares the big zoo models a 100 MB round trip.
    """
    net = generated(model, tmp_path)
    if random_bn:
        w = weights_for(model)
        np.savez(tmp_path / "w.npz", **w)
        ex = ob.to_onnx(model, weights=str(tmp_path / "w.npz"))
    else:
        ex = ob.to_onnx(model, seed=1)
        w = {e.name: arr for e, arr in ex.values() if e.weight.fixed is None}
    net.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=True)
    del w
    net.eval()
    sess = ort.InferenceSession(ex.to_bytes(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(ob._nchw(model.input_shape, batch)).astype(np.float32)
    want = sess.run(None, {"input": x})
    with torch.no_grad():
        got = net(torch.from_numpy(x))
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for o, g, r in zip(model.outputs, got, want, strict=True):
        assert tuple(g.shape) == r.shape, o
        scale = float(np.abs(r).max()) or 1.0
        err = float(np.abs(g.numpy() - r).max()) / scale
        assert err <= rtol, f"{o}: largest difference {err:.2e} of the largest output value"
    # parameters: trainable ones are the module's parameters; the state_dict holds those and the batch norm
    # statistics; fixed kernels are buffers outside it, as they are outside the .npz
    t = model.totals
    fixed = sum(e.weight.size for e in ob.expected_weights(model) if e.weight.fixed is not None)
    assert sum(p.numel() for p in net.parameters()) == t.trainable_params
    assert sum(v.numel() for v in net.state_dict().values()) + fixed == t.params
    return net


@pytest.mark.parametrize("name", ZOO)
def test_zoo_module_equals_onnxruntime(name, tmp_path):
    s = SMALL.get(name)
    model = cnndsl.compile_file(SPECS / f"{name}.cnn")
    if s:
        model = cnndsl.compile_file(SPECS / f"{name}.cnn", (s, s, model.input_shape[2]))
    check_against_onnxruntime(model, tmp_path, batch=1, random_bn=model.totals.params < 2_000_000)


@pytest.mark.parametrize("kind,i,text", KIND_CASES, ids=[f"{k}-{i}" for k, i, _ in KIND_CASES])
def test_kind_module_equals_onnxruntime(kind, i, text, tmp_path):
    check_against_onnxruntime(cnndsl.compile_text(text, f"<{kind}{i}>"), tmp_path)


def test_every_kind_has_a_pytorch_form():
    assert not [k for k, v in LAYERS.items() if k not in INTERNAL and v.pytorch is None]
