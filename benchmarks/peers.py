"""The peers cnndsl is measured against, each run as its own process by benchmarks/run.py.

    python benchmarks/peers.py export resnet50 OUT.onnx [--dynamo]   torchvision model -> torch.onnx.export
    python benchmarks/peers.py summary resnet50                       torchinfo.summary of the model

What is timed is what a user waits for: the whole process, imports included, as for `cnndsl compile`
and `cnndsl summary`. Models are built with `weights=None` (nothing is downloaded) and exported in eval
mode with a dynamic batch, like cnndsl's exports. Needs torch, torchvision and torchinfo (the `bench`
extra); without them it exits 3 with a message.
"""

from __future__ import annotations

import sys

MODELS = ("resnet50", "mobilenet_v2", "vgg16")


def model(name: str):
    import torchvision.models as tvm

    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return getattr(tvm, name)(weights=None).eval()


def export(name: str, out: str, dynamo: bool) -> None:
    import torch

    x = torch.zeros(1, 3, 224, 224)
    if dynamo:
        batch = torch.export.Dim("N", min=1, max=1024)
        torch.onnx.export(model(name), (x,), out, dynamo=True, input_names=["input"], output_names=["output"],
                          dynamic_shapes=({0: batch},), external_data=False, verbose=False)
    else:
        torch.onnx.export(model(name), (x,), out, dynamo=False, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=18)


def summary(name: str) -> None:
    import torchinfo

    print(torchinfo.summary(model(name), input_size=(1, 3, 224, 224), verbose=0))


if __name__ == "__main__":
    try:
        import torch  # noqa: F401
        import torchinfo  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print(f"peers: {e.name} is not installed (pip install -e '.[bench]')", file=sys.stderr)
        sys.exit(3)
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "export":
        export(args[1], args[2], "--dynamo" in args[3:])
    elif len(args) == 2 and args[0] == "summary":
        summary(args[1])
    else:
        sys.exit(__doc__)
