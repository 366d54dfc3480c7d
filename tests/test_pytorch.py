"""`cnndsl compile --to pytorch`: the generated nn.Module file, run in real PyTorch.

Every zoo family (all zoo specs at their own sizes with CNNDSL_FULL=1) and every layer-kind case of
tests/kinds.py is generated, imported from its file, given the same weights as cnndsl's ONNX export, and must
compute what onnxruntime computes (1e-5, relative to the output's largest value) with as many parameters as the
summary counts; LeNet-5 trains. torch is a test dependency (`./dev test` installs it): these tests never skip.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given
from kinds import KINDS
from onnx import numpy_helper
from specgen import FULL, examples, valid_specs

import cnndsl
from cnndsl.backends import onnx as ob
from cnndsl.backends.pytorch import to_pytorch
from cnndsl.layers import INTERNAL, LAYERS

SPECS = Path(__file__).resolve().parent.parent / "specs"
KIND_CASES = [(k, i, text) for k, d in KINDS.items() for i, text in enumerate(d.cases)]
# The original zoo (ResNet-101 and -152 and VGG-19 only at full size: ResNet-50's and VGG-16's blocks, more of
# them), and every torchvision family (below); every kind's own cases run below too.
_TV = json.loads((SPECS.parent / "tests" / "data" / "torchvision_zoo.json").read_text())["models"]
ZOO = ({p.stem for p in SPECS.glob("*.cnn") if p.stem not in _TV} | {
    "alexnet_torchvision", "vgg16", "resnet18", "resnet34", "resnet50",
    "googlenet", "inception_v3", "mobilenet_v2", "squeezenet1_0", "squeezenet1_1", "densenet121",
    "efficientnet_b0", "convnext_tiny", "shufflenet_v2_x0_5", "mobilenet_v3_small", "regnet_y_400mf"})
# Smaller inputs (every layer, every kind and block, a fraction of the time): behind a global average pool the
# weights are the same; VGG's and AlexNet's first fc layer shrinks with the input (1x1x512 and 1x1x256 there).
SMALL = {"vgg16": 32, "alexnet": 67, "alexnet_torchvision": 64, "inception_v3": 75, "googlenet": 32,
         "resnet18": 32, "resnet34": 32, "resnet50": 32, "mobilenet_v1": 32,
         "mobilenet_v2": 32, "squeezenet1_0": 32, "squeezenet1_1": 32, "densenet121": 32, "efficientnet_b0": 32,
         "unet": 32, "convnext_tiny": 32, "shufflenet_v2_x0_5": 64, "mobilenet_v3_small": 32, "regnet_y_400mf": 32,
         "vgg11_bn": 32, "resnext50_32x4d": 32, "wide_resnet50_2": 32, "efficientnet_v2_s": 32, "mnasnet0_5": 32,
         "regnet_x_400mf": 32}
ALL = sorted(p.stem for p in SPECS.glob("*.cnn"))


def family(name: str) -> str:
    """A zoo spec's architecture family: its name without the depth, width or size (resnet50 and resnet152 ->
    resnet, vgg11_bn -> vgg_bn, regnet_x_1_6gf -> regnet_x, efficientnet_b7 -> efficientnet)."""
    name = re.sub(r"_(x\d_\d|\d+(_\d)?[gm]f|\d+x\d+d|b\d|[sml]|small|large|base|tiny|torchvision)$", "", name)
    return re.sub(r"(?<=[a-z]{2})\d+(_\d+)?(?=(_bn)?$)", "", name)


# every family the zoo has, in the normal run: its fewest-MACs member where the list above has none
for _f in sorted({family(n) for n in ALL} - {family(n) for n in ZOO}):
    ZOO.add(min((n for n in _TV if family(n) == _f), key=lambda n: _TV[n]["macs"]))
ZOO = sorted(ZOO)


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


def calibrate(net: torch.nn.Module, x: torch.Tensor) -> None:
    """Batch norm statistics taken from the batch `x` itself (one train-mode forward with momentum 1), as training
    leaves them: the activations stay normalised. With cnndsl's default statistics (mean 0, variance 1) 55 blocks
    of He-initialised convs let them grow (EfficientNet-B7 at 600x600: logits of 4e4), and float32 rounding,
    amplified as much, tells any two implementations apart (docs/testing.md, "Exactness at full size")."""
    bns = [m for m in net.modules() if type(m).__name__ == "BatchNorm"]
    n = {}  # the values each batch norm averages over: its variance is kept biased, as training normalises
    hooks = [m.register_forward_pre_hook(lambda m, args: n.__setitem__(m, args[0].numel() // args[0].shape[1]))
             for m in bns]
    for m in bns:
        m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(x)
        for m in bns:
            m.momentum = 0.1
            m.var.mul_((n[m] - 1) / n[m])
    for h in hooks:
        h.remove()


def check_against_onnxruntime(model, tmp_path: Path, batch: int = 2, bn: str = "random",
                              rtol: float = 1e-5, float64: bool = False) -> torch.nn.Module:
    """The generated module, given the weights of cnndsl's ONNX export, computes what onnxruntime does.

    `bn`: "random": batch norm gets random scale, shift and statistics (through an .npz, as a user brings trained
    weights); "default": both take cnndsl's default weights (He uniform; ones and zeros for batch norm, which still
    tells every batch norm tensor from the others), which spares the big zoo models a 100 MB round trip;
    "calibrated": the default weights with the batch's own statistics (`calibrate`), given to onnxruntime as
    initializers that override the exported ones. `float64`: where the two differ by more than `rtol`, the module
    in float64 tells rounding from a real difference: onnxruntime must then be as close to it as float32 PyTorch
    is (within 3x), as two float32 implementations of the same arithmetic are.
    """
    net = generated(model, tmp_path)
    if bn == "random":
        w = weights_for(model)
        np.savez(tmp_path / "w.npz", **w)
        ex = ob.to_onnx(model, weights=str(tmp_path / "w.npz"))
    else:
        ex = ob.to_onnx(model, seed=1)
        w = {e.name: arr for e, arr in ex.values() if e.weight.fixed is None}
    net.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=True)
    del w
    x = np.random.default_rng(0).standard_normal(ob._nchw(model.input_shape, batch)).astype(np.float32)
    data = ex.to_bytes()
    if bn == "calibrated":
        calibrate(net, torch.from_numpy(x))
        stats = {k: v.numpy() for k, v in net.state_dict().items() if k.endswith((".mean", ".var"))}
        proto = onnx.load_from_string(data)  # NOTE: SessionOptions.add_initializer loses to batch norm fusion
        for t in proto.graph.initializer:
            if t.name in stats:
                t.CopyFrom(numpy_helper.from_array(stats.pop(t.name), t.name))
        assert not stats, f"not in the ONNX model: {sorted(stats)}"
        data = proto.SerializeToString()
        del proto
    net.eval()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    del data
    want = sess.run(None, {"input": x})
    with torch.no_grad():
        got = net(torch.from_numpy(x))
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for i, (o, g, r) in enumerate(zip(model.outputs, got, want, strict=True)):
        assert tuple(g.shape) == r.shape, o
        scale = float(np.abs(r).max()) or 1.0
        err = float(np.abs(g.numpy() - r).max()) / scale
        if err > rtol and float64:
            with torch.no_grad():
                exact = net.double()(torch.from_numpy(x).double())
            exact = (exact if isinstance(exact, tuple) else (exact,))[i]
            e_ort, e_torch = (float(np.abs(a - exact.numpy()).max()) / scale for a in (r, g.numpy()))
            net.float()
            assert e_ort <= max(rtol, 3 * e_torch), \
                f"{o}: onnxruntime is {e_ort:.2e} from the float64 module, float32 PyTorch {e_torch:.2e}"
            continue
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
    check_against_onnxruntime(model, tmp_path, batch=1, bn="random" if model.totals.params < 2_000_000 else "default",
                              float64=True)


def test_every_zoo_family_runs_in_the_normal_run():
    assert {family(n) for n in ALL} == {family(n) for n in ZOO}
    assert family("resnext101_64x4d") == "resnext" and family("vgg19_bn") == "vgg_bn" \
        and family("shufflenet_v2_x1_5") == "shufflenet_v2" and family("mobilenet_v3_large") == "mobilenet_v3"


@pytest.mark.skipif(not FULL, reason="the long campaign: CNNDSL_FULL=1 (./dev test-full)")
@pytest.mark.parametrize("name", ALL)
def test_zoo_module_at_full_size_equals_onnxruntime(name, tmp_path):
    """Every zoo spec at its own input size, batch norm calibrated on the batch (see `calibrate`)."""
    check_against_onnxruntime(cnndsl.compile_file(SPECS / f"{name}.cnn"), tmp_path, batch=2, bn="calibrated",
                              float64=True)


@pytest.mark.parametrize("kind,i,text", KIND_CASES, ids=[f"{k}-{i}" for k, i, _ in KIND_CASES])
def test_kind_module_equals_onnxruntime(kind, i, text, tmp_path):
    check_against_onnxruntime(cnndsl.compile_text(text, f"<{kind}{i}>"), tmp_path)


@examples(normal=30, full=1000)
@given(valid_specs())
def test_generated_specs_as_modules_equal_onnxruntime(gen):
    """Generated specs (every kind, blocks, residuals, branches, named values, vectors) as PyTorch modules.

    Found: an fc that flattens or has `act=` inside a plain chain or residual, which the helpers called as a
    bare nn.Linear. The tolerance is 1e-4 here: tiny random layers (an fc of one unit) lose digits on both sides.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        check_against_onnxruntime(cnndsl.compile_text(gen.text, "gen.cnn"), Path(d), rtol=1e-4)


def test_every_kind_has_a_pytorch_form():
    assert not [k for k, v in LAYERS.items() if k not in INTERNAL and v.pytorch is None]


# --- it trains -------------------------------------------------------------------------------------------


def test_lenet5_trains(tmp_path):
    """A few SGD steps on synthetic data (two classes told apart by brightness) lower LeNet-5's loss."""
    model = cnndsl.compile_file(SPECS / "lenet5.cnn")
    net = generated(model, tmp_path)
    torch.manual_seed(0)
    x = torch.randn(64, 3, 32, 32)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    opt = torch.optim.SGD(net.parameters(), lr=0.02)
    net.train()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        out = net(x)  # the spec ends in softmax: the loss takes its log
        loss = torch.nn.functional.nll_loss(torch.log(out + 1e-9), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0] and losses == sorted(losses, reverse=True), losses


def test_batch_norm_and_dropout_follow_train_and_eval(tmp_path):
    text = "input 8x8x3\nconv f=3 n=4 bn=true act=relu\ndropout 0.5\nbn\ngap -> fc 2"
    net = generated(cnndsl.compile_text(text, "<bn-dropout>"), tmp_path)
    x = torch.randn(4, 3, 8, 8)
    net.train()
    before = net.state_dict()["conv1.bn.mean"].clone()
    a, b = net(x), net(x)
    assert not torch.equal(a, b)  # dropout draws new masks in training
    assert not torch.equal(before, net.state_dict()["conv1.bn.mean"])  # running statistics move
    (a.sum() + b.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    stats = {k: v.clone() for k, v in net.state_dict().items()}
    assert torch.equal(net(x), net(x))  # deterministic, statistics used and not updated
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in stats.items())


def test_residual_blocks_train_with_in_place_activations(tmp_path):
    """ResNet's ReLU after the sum works in place; backward through it must still be exact (autograd checks)."""
    model = cnndsl.compile_file(SPECS / "resnet18.cnn", (32, 32, 3))
    net = generated(model, tmp_path).double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    net.train()
    net(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    src = (tmp_path / next(p.name for p in tmp_path.glob("gen_*.py"))).read_text()
    assert "self.relu1 = nn.ReLU(inplace=True)" in src


@pytest.mark.parametrize("body,in_place", [
    ("conv f=3 p=1 n=4 bn=true", True),  # ResNet's last conv: batch norm's backward needs its input only
    ("conv f=3 p=1 n=4 -> droppath 0.2", True),  # EfficientNet's, ConvNeXt's: the identity at inference
    ("conv f=1 n=4 -> layerscale init=0.5", True),
    ("conv f=3 p=1 n=4 act=relu", False),  # ReLU's and sigmoid's backward read their own output
    ("conv f=3 p=1 n=4 -> sigmoid", False),
    ("dropout 0.5", False),  # at inference the body's output is the block's input itself
])
def test_residual_sums_in_place_only_where_autograd_allows(body, in_place, tmp_path):
    """The Residual helper adds the shortcut into the body's output (torchvision's `out += identity`, one tensor
    fewer per block) only where that output is fresh and not saved for backward; elsewhere the sum is a new
    tensor, written out in a class. Either way: onnxruntime's values, the input untouched, and a backward pass
    that autograd accepts (it refuses one through a saved tensor changed in place)."""
    model = cnndsl.compile_text(f"input 6x6x4\nresidual {{ {body} }}\nrelu", "<residual>")
    net = check_against_onnxruntime(model, tmp_path)
    src = next(tmp_path.glob("gen_*.py")).read_text()
    assert ("Residual(" in src) == in_place and ("y += self.shortcut(x)" in src) == in_place
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    net = net.double()
    for train in (False, True):
        net.train(train)
        x0 = x.detach().clone()
        torch.manual_seed(0)
        net(x).sum().backward()  # autograd refuses a tensor it saved and that was changed in place
        assert torch.equal(x.detach(), x0)


# --- the command --------------------------------------------------------------------------------------------


def test_compile_to_pytorch_writes_a_file_that_imports_only_torch(cli, tmp_path):
    out = tmp_path / "resnet50.py"
    r = cli("compile", SPECS / "resnet50.cnn", "--to", "pytorch", "-o", out)
    assert r.code == 0, r.err
    assert f"wrote {out}" in r.out and "25,610,152 parameters" in r.out
    src = out.read_text()
    imports = [line for line in src.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import torch", "import torch.nn.functional as F", "from torch import nn"]
    # blocks are classes with the block's parameters; the forward reads like the spec
    assert "class Bottleneck(nn.Module):" in src and "def __init__(self, c_in, n):" in src
    assert "conv3=Conv(n, 4 * n, 1, bias=False, bn=True)," in src
    assert "        conv2_x = self.conv2_x(pool1)\n" in src
    mod = load_module(src, tmp_path / "resnet50_mod.py")
    model = cnndsl.compile_file(SPECS / "resnet50.cnn")
    names = [e.name for e in ob.expected_weights(model)]
    assert list(mod.Model().state_dict()) == names  # one to one, in the same order


def test_compile_to_pytorch_usage_errors(cli, tmp_path):
    r = cli("compile", SPECS / "lenet5.cnn", "--to", "pytorch", "-o", tmp_path / "model.onnx")
    assert r.code == 2 and "ending in .py" in r.err
    r = cli("compile", SPECS / "lenet5.cnn", "--to", "pytorch", "-o", tmp_path / "nowhere" / "model.py")
    assert r.code == 2 and "does not exist" in r.err
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 8x8x3\ntrain = conv f=3 n=2\n")
    r = cli("compile", bad, "--to", "pytorch", "-o", tmp_path / "bad.py")
    assert r.code == 1 and "a method of nn.Module" in r.err and not (tmp_path / "bad.py").exists()


def test_the_package_does_not_import_torch_unless_asked(cli, tmp_path):
    code = ("import sys, cnndsl.cli as c; c.main(['compile', 'specs/lenet5.cnn', '-o', sys.argv[1]]); "
            "c.main(['compile', 'specs/lenet5.cnn', '--to', 'pytorch', '-o', sys.argv[2]]); "
            "print('torch' in sys.modules)")
    import subprocess

    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.onnx"), str(tmp_path / "a.py")],
                       capture_output=True, text=True, cwd=SPECS.parent)
    assert p.stdout.strip().endswith("False"), p.stderr
