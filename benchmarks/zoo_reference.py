"""Optional: recompute the reference totals of the model zoo (specs/) with PyTorch and torchvision.

cnndsl does not need torch; this script is how the numbers in tests/test_zoo.py and docs/zoo.md were
checked, and it needs `torch` and `torchvision` installed in some other environment, e.g.

    python3 -m venv tv-env && tv-env/bin/pip install torch==2.14.1 torchvision==0.29.1
    tv-env/bin/python benchmarks/zoo_reference.py            # every model
    tv-env/bin/python benchmarks/zoo_reference.py resnet50   # one
    tv-env/bin/python benchmarks/zoo_reference.py --write    # all 68 torchvision CNN classifiers ->
                                                             # tests/data/torchvision_zoo.json

For each model it prints the trainable parameters (sum of `p.numel()` over `parameters()`), the batch
norm running statistics (`running_mean` + `running_var`; PyTorch's `num_batches_tracked` counters are not
weights and are left out) and the MACs at batch 1 and the spec's input size, counted by forward hooks:
Conv2d out.numel() * in/groups * kh * kw, Linear in * out, ConvTranspose2d in.numel() * out/groups * kh * kw
(every input pixel scatters one kh x kw x out/groups patch; the Conv2d formula would count s^2 times
too many for a stride-s transposed convolution). Bias, batch norm, activations, pooling and merges are
not counted, which is cnndsl's convention.

torchvision models are built with `weights=None` (nothing is downloaded). The models torchvision does not
have (the notes' examples, paper AlexNet, MobileNet-v1, U-Net) are written out below as plain nn modules
that follow the papers, so that they too are checked by an independent implementation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn


def count(model: nn.Module, hw: tuple[int, int], c: int = 3) -> tuple[int, int, int]:
    """(trainable params, BN running statistics, MACs) of `model` on a 1 x c x h x w input."""
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    macs = 0

    def hook(m, inp, out):
        nonlocal macs
        x = inp[0]
        kh, kw = m.kernel_size if not isinstance(m, nn.Linear) else (1, 1)
        if isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features * (out.numel() // m.out_features)
        elif isinstance(m, nn.ConvTranspose2d):
            macs += x.numel() * m.out_channels // m.groups * kh * kw
        else:
            macs += out.numel() * m.in_channels // m.groups * kh * kw

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, c, *hw))
    for h in hooks:
        h.remove()
    return trainable, stats, macs


# --- models torchvision does not have ------------------------------------------------------------


def lenet5() -> nn.Module:
    """The notes' LeNet-5 table: 32x32x3, max pooling, no activations listed."""
    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10), nn.Softmax(1))


def notes_convnet() -> nn.Module:
    """The notes' simple conv net: 39x39x3 -> 37x37x10 -> 17x17x20 -> 7x7x40 -> 1960 -> softmax."""
    return nn.Sequential(nn.Conv2d(3, 10, 3), nn.Conv2d(10, 20, 5, 2), nn.Conv2d(20, 40, 5, 2), nn.Flatten(),
                         nn.Softmax(1))


def residual_block() -> nn.Module:
    """torchvision's ResNet basic block 56x56x64 -> 28x28x128 with its 1x1 conv + bn projection."""
    from torchvision.models.resnet import BasicBlock, conv1x1

    return BasicBlock(64, 128, stride=2, downsample=nn.Sequential(conv1x1(64, 128, 2), nn.BatchNorm2d(128)))


class InceptionModule(nn.Module):
    """GoogLeNet paper, Table 1, inception (3a) on 28x28x192: conv with bias + ReLU, no batch norm."""

    def __init__(self):
        super().__init__()
        cr = lambda i, o, k: [nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU()]
        self.b1 = nn.Sequential(*cr(192, 64, 1))
        self.b2 = nn.Sequential(*cr(192, 96, 1), *cr(96, 128, 3))
        self.b3 = nn.Sequential(*cr(192, 16, 1), *cr(16, 32, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), *cr(192, 32, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def alexnet_paper() -> nn.Module:
    """Krizhevsky et al. 2012 as one stream (no groups), 227x227x3, LRN after conv1 and conv2."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 1000), nn.Softmax(1),
    )


def mobilenet_v1() -> nn.Module:
    """Howard et al. 2017, Table 1, width 1.0, 224x224x3: conv/dw/pw without bias, each with BN + ReLU;
    the classifier is a 1x1 conv with bias (as Keras' MobileNet; the same count as the paper's FC)."""

    def cbr(i, o, k, s, g=1):
        return [nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    layers = cbr(3, 32, 3, 2)
    cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + \
        [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    for i, o, s in cfg:
        layers += cbr(i, i, 3, s, g=i) + cbr(i, o, 1, 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Dropout(1e-3), nn.Conv2d(1024, 1000, 1), nn.Flatten(), nn.Softmax(1)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Ronneberger et al. 2015 with "same" padding (every 3x3 conv keeps H x W, so no cropping):
    1 input channel, 2 classes, conv + bias + ReLU, 2x2 up-convolutions that halve the channels."""

    def __init__(self, c_in: int = 1, classes: int = 2):
        super().__init__()
        def two(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1), nn.ReLU())

        w = [64, 128, 256, 512, 1024]
        self.down = nn.ModuleList([two(c_in, 64)] + [two(a, b) for a, b in zip(w, w[1:], strict=False)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, 2) for a, b in zip(w, w[1:], strict=False)][::-1])
        self.dec = nn.ModuleList([two(b, a) for a, b in zip(w, w[1:], strict=False)][::-1])
        self.head = nn.Conv2d(64, classes, 1)

    def forward(self, x):
        skips = []
        for i, d in enumerate(self.down):
            x = d(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, skips[-2::-1], strict=True):
            x = dec(torch.cat([skip, up(x)], 1))
        return self.head(x)


# --- the zoo: spec name -> (model factory, input H x W, channels) ---------------------------------

ZOO = {
    "lenet5": (lenet5, 32, 3),
    "notes_convnet": (notes_convnet, 39, 3),
    "residual_block": (residual_block, 56, 64),
    "inception_module": (InceptionModule, 28, 192),
    "alexnet": (alexnet_paper, 227, 3),
    "alexnet_torchvision": (lambda: tvm.alexnet(weights=None), 224, 3),
    "vgg16": (lambda: tvm.vgg16(weights=None), 224, 3),
    "vgg19": (lambda: tvm.vgg19(weights=None), 224, 3),
    "resnet18": (lambda: tvm.resnet18(weights=None), 224, 3),
    "resnet34": (lambda: tvm.resnet34(weights=None), 224, 3),
    "resnet50": (lambda: tvm.resnet50(weights=None), 224, 3),
    "resnet101": (lambda: tvm.resnet101(weights=None), 224, 3),
    "resnet152": (lambda: tvm.resnet152(weights=None), 224, 3),
    "googlenet": (lambda: tvm.googlenet(weights=None, aux_logits=False, init_weights=False), 224, 3),
    "inception_v3": (lambda: tvm.inception_v3(weights=None, aux_logits=False, init_weights=False), 299, 3),
    "mobilenet_v1": (mobilenet_v1, 224, 3),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(weights=None), 224, 3),
    "squeezenet1_0": (lambda: tvm.squeezenet1_0(weights=None), 224, 3),
    "squeezenet1_1": (lambda: tvm.squeezenet1_1(weights=None), 224, 3),
    "densenet121": (lambda: tvm.densenet121(weights=None), 224, 3),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(weights=None), 224, 3),
    "unet": (UNet, 512, 1),
}


# --- every torchvision CNN classifier: tests/data/torchvision_zoo.json ------------------------------

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "torchvision_zoo.json"
SPEC_NAME = {"alexnet": "alexnet_torchvision"}  # specs/alexnet.cnn is the paper's AlexNet


def classifiers() -> list[str]:
    """torchvision's image classifiers minus the transformers (68 in torchvision 0.29)."""
    return [n for n in tvm.list_models(module=tvm) if not n.startswith(("vit_", "swin_", "maxvit_"))]


def build(name: str) -> nn.Module:
    """The model as it is evaluated: GoogLeNet and Inception-v3 without their training-only auxiliary heads."""
    kw = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    return tvm.get_model(name, weights=None, **kw)


def eval_size(name: str) -> int:
    """The input side of the default weights' evaluation transform (its centre crop): 224 for most."""
    (side,) = tvm.get_model_weights(name).DEFAULT.transforms().crop_size
    return side


def write_data(names: list[str]) -> None:
    """Count every classifier on the meta device (shapes only: no memory for weights, no arithmetic)."""
    out = {}
    for name in names:
        side = eval_size(name)
        try:
            with torch.device("meta"):
                model = build(name)
        except NotImplementedError:  # RegNet computes its widths with tensors while building: build for real
            model = build(name).to("meta")
        with torch.device("meta"):
            trainable, stats, macs = count(model, (side, side))
        out[SPEC_NAME.get(name, name)] = {"builder": name, "input": side, "trainable": trainable,
                                          "bn_stats": stats, "macs": macs}
        print(f"{name:20s} {side:4d} trainable {trainable:>12,}  bn stats {stats:>9,}  MACs {macs:>15,}")
    doc = {
        "about": f"torchvision {__import__('torchvision').__version__} (torch {torch.__version__}) CNN classifiers "
                 "(list_models minus vit_*, swin_*, maxvit_*), written by `python benchmarks/zoo_reference.py "
                 "--write`: trainable = sum of parameters().numel(); bn_stats = running_mean + running_var; macs = "
                 "Conv2d out.numel() * in/groups * kh * kw + Linear in * out * positions, at batch 1 and `input` "
                 "x `input` (the default weights' centre crop). Keys are cnndsl spec names.",
        "models": out,
    }
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(doc, indent=1) + "\n")


def main(names: list[str]) -> None:
    print(f"torch {torch.__version__}, torchvision {__import__('torchvision').__version__}")
    if names[:1] == ["--write"]:
        write_data(names[1:] or classifiers())
        return
    for name in names or ZOO:
        make, hw, c = ZOO[name]
        trainable, stats, macs = count(make(), (hw, hw), c)
        print(f"{name:20s} {hw}x{hw}x{c:<4d} trainable {trainable:>12,}  bn stats {stats:>9,}  MACs {macs:>15,}")


if __name__ == "__main__":
    main(sys.argv[1:])
