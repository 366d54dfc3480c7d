"""What the analyses cost: `cnndsl summary` of ResNet-152 with everything on, against cnndsl without them.

    python benchmarks/analyses_cost.py --base DIR [--runs 15] [--write]

DIR holds the cnndsl source before the analyses (for example `git archive <commit> | tar -x -C DIR`). Both
are timed as a user waits for them: a whole `python -m cnndsl summary specs/resnet152.cnn` process,
interleaved run by run so that the noise of a shared machine falls on both alike; the current one with
every analysis on (receptive fields, truncation, the memory footer at `--batch 32 --optimizer adam`). The
target: within 1.2x of the time before. `--write` puts the result into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- analyses cost: begin (benchmarks/analyses_cost.py --write) -->", "<!-- analyses cost: end -->"


def once(src: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnndsl", "summary", str(ROOT / "specs" / "resnet152.cnn"), *args],
                   env=env, cwd=src, check=True, capture_output=True)
    return time.perf_counter() - t


INPROC = """
import statistics, sys, time
from cnndsl.model import compile_file
from cnndsl.backends import summary
kw = dict(batch=32, optimizer="adam") if sys.argv[1] == "now" else {}
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    summary.to_text(compile_file(sys.argv[3]), **kw)
    times.append(time.perf_counter() - t)
print(min(times), statistics.median(times))
"""


def inproc(src: Path, which: str, runs: int) -> tuple[float, float]:
    """(min, median) seconds of compile + summary text in one process: the work itself, without start-up."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", INPROC, which, str(runs), str(ROOT / "specs" / "resnet152.cnn")],
                         env=env, cwd=src, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="cnndsl's source before the analyses")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    now_args = ["--batch", "32", "--optimizer", "adam"]
    base, now = [], []
    once(args.base, []), once(ROOT, now_args)  # warm the file cache
    for _ in range(args.runs):
        base.append(once(args.base, []))
        now.append(once(ROOT, now_args))
    b, n = statistics.median(base), statistics.median(now)
    ib, inow = inproc(args.base, "base", 3 * args.runs), inproc(ROOT, "now", 3 * args.runs)
    text = "\n".join([
        BEGIN,
        "## What the analyses cost",
        "",
        f"`python benchmarks/analyses_cost.py --base DIR --runs {args.runs}`: whole-process `cnndsl summary "
        "specs/resnet152.cnn`, medians of interleaved runs, before the analyses (DIR: the source without them) and "
        "with every analysis on (receptive-field column, truncation check, memory footer at `--batch 32 "
        f"--optimizer adam`), {os.cpu_count()} cores.",
        "",
        "| | median | min-max |",
        "|---|---:|---:|",
        f"| before | {b:.3f} s | {min(base):.3f}-{max(base):.3f} s |",
        f"| with the analyses | {n:.3f} s | {min(now):.3f}-{max(now):.3f} s |",
        f"| ratio (target <= 1.2x) | {n / b:.2f}x | |",
        "",
        f"In one process (compile + summary text, {3 * args.runs} runs each, no start-up): before "
        f"{ib[0] * 1000:.0f} ms (min; median {ib[1] * 1000:.0f} ms), with the analyses {inow[0] * 1000:.0f} ms (min; "
        f"median {inow[1] * 1000:.0f} ms): {inow[0] / ib[0]:.2f}x of the work, about {(inow[0] - ib[0]) * 1000:.0f} "
        "ms added to a process that spends most of its time starting Python and importing.",
        "",
        END,
    ])
    print(text)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from memory import write

        path = ROOT / "benchmarks" / "RESULTS.md"
        old = path.read_text()
        if BEGIN in old:
            old = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END):]
            path.write_text(old)
        else:
            write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
