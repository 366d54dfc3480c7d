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
# Smaller inputs where the spec allows (a global average pool before the classifier): the same layers and
# weights, a fraction of the time. The others run at their own size.
SMALL = {"resnet18": 64, "resnet34": 64, "resnet50": 64, "resnet101": 64, "resnet152": 64, "googlenet": 64,
         "inception_v3": 139, "mobilenet_v1": 64, "mobilenet_v2": 64, "squeezenet1_0": 64, "squeezenet1_1": 64,
         "densenet121": 64, "efficientnet_b0": 64, "unet": 64}


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


def check_against_onnxruntime(model, tmp_path: Path, batch: int = 2, rtol: float = 1e-5) -> torch.nn.Module:
    net = generated(model, tmp_path)
    w = weights_for(model)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=True)
    net.eval()
    npz = tmp_path / "w.npz"
    np.savez(npz, **w)
    sess = ort.InferenceSession(ob.to_onnx(model, weights=str(npz)).to_bytes(), providers=["CPUExecutionProvider"])
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
    check_against_onnxruntime(model, tmp_path)


@pytest.mark.parametrize("kind,i,text", KIND_CASES, ids=[f"{k}-{i}" for k, i, _ in KIND_CASES])
def test_kind_module_equals_onnxruntime(kind, i, text, tmp_path):
    check_against_onnxruntime(cnndsl.compile_text(text, f"<{kind}{i}>"), tmp_path)


def test_every_kind_has_a_pytorch_form():
    assert not [k for k, v in LAYERS.items() if k not in INTERNAL and v.pytorch is None]
