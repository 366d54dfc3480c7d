"""The generated PyTorch module against torchvision's own: one training step (forward + backward) of ResNet-50.

    python benchmarks/pytorch_train.py [--batch 32] [--rounds 10] [--threads 2] [--device cpu|cuda] [--profile]
                                       [--write]

`cnndsl compile specs/resnet50.cnn --to pytorch` is imported from a file, as a user would, and timed against
`torchvision.models.resnet50(weights=None)` in the same process. Both hold the same tensors (torchvision's
initial weights, paired with cnndsl's weight names by order: `state_dict()` minus `num_batches_tracked`), and
the warm-up step checks that they compute the same loss and gradients, so the two time the same arithmetic.
Each round times one step of each, the order alternating round by round (so that the load of a shared machine
and the allocator's state hit both alike); a step is forward + backward (loss: the outputs' mean) in train mode.
The thread count is fixed (`--threads`); wall time and the process's CPU time (all its threads) are both
measured. Printed: the medians and the best of each, and three ratios generated / torchvision: of the medians,
of the bests, and the median of the rounds' own ratios (each round's two steps ran under the same load); the
target is at most 1.05. The load average is printed before and after. `--profile` adds, per operator, the
calls and self CPU time of one profiled step of each (torch.profiler): where the two differ in what they run.
`--write` records the result in benchmarks/PYTORCH.md. Needs torch and torchvision.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
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


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def step(net, x, sync) -> tuple[float, float]:
    """(wall, CPU) seconds of one forward + backward."""
    t, c = time.perf_counter(), cpu_seconds()
    net.zero_grad(set_to_none=True)
    net(x).mean().backward()
    sync()
    return time.perf_counter() - t, cpu_seconds() - c


def same_weights(ours, theirs) -> None:
    """Give the generated module torchvision's tensors: the state_dicts pair one to one by order."""
    import torch

    src = [v for k, v in theirs.state_dict().items() if not k.endswith("num_batches_tracked")]
    dst = ours.state_dict()
    if [tuple(v.shape) for v in dst.values()] != [tuple(v.shape) for v in src]:
        raise SystemExit("the generated module's tensors do not pair with torchvision's by order")
    with torch.no_grad():
        ours.load_state_dict(dict(zip(dst, src, strict=True)))


def check_same(ours, theirs, x) -> str:
    """The warm-up step of each: the same loss and gradients (float32, relative to the largest value)."""
    losses, grads = [], []
    for net in (ours, theirs):
        net.zero_grad(set_to_none=True)
        loss = net(x).mean()
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad for p in net.parameters()])
    worst = max(float((a - b).abs().max() / (b.abs().max() or 1.0)) for a, b in zip(*grads, strict=True))
    if abs(losses[0] - losses[1]) > 1e-4 * abs(losses[1]) or worst > 1e-3:
        raise SystemExit(f"the two models differ: loss {losses[0]} vs {losses[1]}, gradients {worst:.2e}")
    del grads
    return f"same loss ({losses[1]:.6g}) and gradients (largest difference {worst:.1e} of the largest value)"


def profile(nets: dict, x, top: int = 25) -> list[str]:
    """Per operator: calls and self CPU time in one profiled step of each model, the biggest first."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    res = {}
    for name, net in nets.items():
        with prof(activities=[ProfilerActivity.CPU]) as p:
            net.zero_grad(set_to_none=True)
            net(x).mean().backward()
        res[name] = {e.key: (e.count, e.self_cpu_time_total / 1e3) for e in p.key_averages()}
    a, b = res.values()
    keys = sorted(set(a) | set(b), key=lambda k: -max(a.get(k, (0, 0))[1], b.get(k, (0, 0))[1]))
    lines = [f"  {'operator':<44} {'calls':>7} {'calls':>7} {'self ms':>9} {'self ms':>9}",
             f"  {'':<44} {'gen.':>7} {'tv':>7} {'gen.':>9} {'tv':>9}"]
    for k in keys[:top]:
        (n1, t1), (n2, t2) = a.get(k, (0, 0.0)), b.get(k, (0, 0.0))
        lines.append(f"  {k[:44]:<44} {n1:>7} {n2:>7} {t1:>9.1f} {t2:>9.1f}")
    diff = [k for k in set(a) | set(b) if a.get(k, (0,))[0] != b.get(k, (0,))[0]]
    lines.append("  operators called a different number of times: " + (", ".join(
        f"{k} ({a.get(k, (0,))[0]} vs {b.get(k, (0,))[0]})" for k in sorted(diff)) or "none"))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch's intra-op threads (fixed)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--spec", default=str(ROOT / "specs" / "resnet50.cnn"))
    ap.add_argument("--profile", action="store_true", help="also compare the operators of one step of each")
    ap.add_argument("--write", action="store_true", help="record the result in benchmarks/PYTORCH.md")
    args = ap.parse_args(argv)
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as d:
        ours = generated(Path(args.spec), Path(d)).train()
    theirs = torchvision.models.resnet50(weights=None).train()
    same_weights(ours, theirs)
    ours, theirs = ours.to(dev), theirs.to(dev)
    n_ours, n_theirs = (sum(p.numel() for p in m.parameters()) for m in (ours, theirs))
    x = torch.randn(args.batch, 3, 224, 224, device=dev)
    load0 = os.getloadavg()
    same = check_same(ours, theirs, x)  # also the warm-up step of each
    nets = {"generated": ours, "torchvision": theirs}
    wall: dict[str, list[float]] = {k: [] for k in nets}
    cpu: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(args.rounds):
        for k in (list(nets) if r % 2 == 0 else list(nets)[::-1]):
            w, c = step(nets[k], x, sync)
            wall[k].append(w)
            cpu[k].append(c)
    load1 = os.getloadavg()
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    lines = [f"ResNet-50 forward + backward, batch {args.batch}, {args.device} ({where}); torch {torch.__version__}, "
             f"torchvision {torchvision.__version__}",
             f"{args.rounds} rounds after a warm-up step each, the order alternating; load average "
             f"{load0[0]:.2f} before, {load1[0]:.2f} after (1 minute)",
             f"  parameters: generated {n_ours:,}, torchvision {n_theirs:,}; warm-up: {same}"]
    for label, t in (("wall", wall), ("CPU", cpu)):
        for k, v in t.items():
            lines.append(f"  {label:<4} {k:<12} median {statistics.median(v):8.3f} s   best {min(v):8.3f} s   "
                         f"worst {max(v):8.3f} s")
    for label, t in (("wall", wall), ("CPU", cpu)):
        a, b = t["generated"], t["torchvision"]
        paired = statistics.median(x / y for x, y in zip(a, b, strict=True))
        medians = statistics.median(a) / statistics.median(b)
        lines.append(f"  ratio generated / torchvision, {label:<4}: medians {medians:.3f}, bests {min(a) / min(b):.3f},"
                     f" median of the rounds' ratios {paired:.3f} (target <= 1.05)")
    if args.profile:
        lines += ["one profiled step of each (torch.profiler, self CPU time per operator):", *profile(nets, x)]
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
