"""The generated PyTorch module against torchvision's own: one training step (forward + backward) of ResNet-50.

    python benchmarks/pytorch_train.py [--batch 32] [--rounds 5] [--device cpu|cuda] [--write]

`cnndsl compile specs/resnet50.cnn --to pytorch` is imported from a file, as a user would, and timed against
`torchvision.models.resnet50(weights=None)` in the same process: after a warm-up step each, the two alternate
round by round (so that a machine's load hits both alike), and each round times one forward + backward
(loss: the outputs' mean) with `torch.no_grad` off and the models in train mode. Prints the medians and their
ratio (generated / torchvision; the target is at most 1.05) and the machine; `--write` also records them in
benchmarks/PYTORCH.md. Needs torch and torchvision.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generated(spec: Path, folder: Path):
    from cnndsl.backends.pytorch import to_pytorch
    from cnndsl.model import compile_file

    path = folder / "generated_model.py"
    path.write_text(to_pytorch(compile_file(spec)))
    mod_spec = importlib.util.spec_from_file_location("generated_model", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.Model()


def step(net, x, sync) -> float:
    t = time.perf_counter()
    net.zero_grad(set_to_none=True)
    net(x).mean().backward()
    sync()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--spec", default=str(ROOT / "specs" / "resnet50.cnn"))
    ap.add_argument("--write", action="store_true", help="record the result in benchmarks/PYTORCH.md")
    args = ap.parse_args(argv)
    import torch
    import torchvision

    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as d:
        ours = generated(Path(args.spec), Path(d)).to(dev).train()
    theirs = torchvision.models.resnet50(weights=None).to(dev).train()
    n_ours, n_theirs = (sum(p.numel() for p in m.parameters()) for m in (ours, theirs))
    x = torch.randn(args.batch, 3, 224, 224, device=dev)
    times: dict[str, list[float]] = {"generated": [], "torchvision": []}
    for net in (ours, theirs):  # warm-up
        step(net, x, sync)
    for _ in range(args.rounds):
        times["generated"].append(step(ours, x, sync))
        times["torchvision"].append(step(theirs, x, sync))
    med = {k: statistics.median(v) for k, v in times.items()}
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    lines = [f"ResNet-50 forward + backward, batch {args.batch}, {args.device} ({where}); torch {torch.__version__}, "
             f"torchvision {torchvision.__version__}; {args.rounds} alternating rounds after a warm-up step each",
             f"  parameters: generated {n_ours:,}, torchvision {n_theirs:,}"]
    for k, v in times.items():
        lines.append(f"  {k:<12} median {med[k]:.3f} s  (min {min(v):.3f}, max {max(v):.3f})")
    lines.append(f"  ratio generated / torchvision: {med['generated'] / med['torchvision']:.3f} (target <= 1.05)")
    print("\n".join(lines))
    if args.write:
        cmd = "python benchmarks/pytorch_train.py " + " ".join(argv if argv is not None else sys.argv[1:])
        (ROOT / "benchmarks" / "PYTORCH.md").write_text(
            "# The generated PyTorch module against torchvision's\n\n"
            f"Written by `{cmd.strip()}` (benchmarks/pytorch_train.py; do not edit by hand) on "
            f"{platform.platform()}, Python {platform.python_version()}.\n\n```\n" + "\n".join(lines) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
