"""`cnndsl check` of every torchvision CNN classifier in specs/, whole process (issue #11: each within 0.3 s).

    python benchmarks/check_zoo.py [--runs 5]      # replaces its section of benchmarks/RESULTS.md

The 68 specs are the keys of tests/data/torchvision_zoo.json. Each is checked `runs` times as a user runs it
(the `cnndsl` console script, a fresh process: interpreter start, imports, parse, build, shapes, costs);
the section gives the median and the range of each, and the slowest median against the target. The
processes run without PYTHONDONTWRITEBYTECODE, whatever the caller's environment says: an installed
package has its modules compiled (.pyc), and without them every run would compile cnndsl's sources again.
The section ends with the largest imports of one `check` (`python -X importtime`), by their own time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import cnndsl, progress  # noqa: E402

ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- check-zoo:begin (benchmarks/check_zoo.py) -->", "<!-- check-zoo:end -->"
TARGET = 0.3  # seconds, whole process, on a 2-core machine


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: .pyc files used


def cpu_and_wall(cmd: list[str]) -> tuple[float, float]:
    """(CPU seconds, user + system, and wall seconds) of one run of cmd as a child process."""
    with open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=null, stderr=null, env=ENV)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return usage.ru_utime + usage.ru_stime, wall


def top_imports(name: str, count: int = 12) -> list[str]:
    """Table rows: the modules whose own import time is largest in one `check` of specs/NAME.cnn (the
    median of 5 runs of `PYTHONPROFILEIMPORTTIME=1`, which itself adds some time to each import)."""
    runs: list[dict[str, int]] = []
    for _ in range(5):
        p = subprocess.run([*cnndsl(), "check", f"specs/{name}.cnn"], cwd=ROOT, capture_output=True, text=True,
                           env={**ENV, "PYTHONPROFILEIMPORTTIME": "1"})
        own = {}
        for line in p.stderr.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                us, _, module = line.split(":", 1)[1].split("|")
                own[module.strip()] = int(us)
        runs.append(own)
    median = {m: statistics.median(r.get(m, 0) for r in runs) for m in runs[0]}
    total = sum(median.values())
    top = sorted(median.items(), key=lambda kv: -kv[1])[:count]
    rows = [f"| {m} | {us / 1000:.1f} ms |" for m, us in top]
    return [*rows, f"| all {len(median)} modules | {total / 1000:.1f} ms |"]


def section(runs: int) -> str:
    from cnndsl import compile_file

    names = ["lenet5", *sorted(json.loads((ROOT / "tests" / "data" / "torchvision_zoo.json").read_text())["models"])]
    rows, worst = [], ("", 0.0, 0.0)
    for name in names:
        spec = f"specs/{name}.cnn"
        layers = len(compile_file(ROOT / spec).layers)
        progress(f"check {name}")
        cpu, wall = zip(*(cpu_and_wall([*cnndsl(), "check", spec]) for _ in range(runs)), strict=True)
        c, w = statistics.median(cpu), statistics.median(wall)
        rows.append(f"| {name} | {layers} | {c:.2f} s ({min(cpu):.2f}-{max(cpu):.2f}) | {w:.2f} s |")
        if name != "lenet5" and c > worst[1]:
            worst = (name, c, w)
    progress("")
    imports = top_imports(worst[0])
    load = os.getloadavg()[0]
    verdict = "met" if worst[1] <= TARGET else "NOT met"
    return "\n".join([
        BEGIN, "## `cnndsl check` of torchvision's 68 CNN classifiers", "",
        f"`python benchmarks/check_zoo.py --runs {runs}` ({os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load:.1f} while measuring): whole process, CPU time "
        f"(user + system, which a busy machine does not inflate as it does wall time), median (min-max) of {runs} "
        f"runs, and the median wall time; lenet5 first, as the start-up baseline. Target: every one within "
        f"{TARGET} s. Slowest: {worst[0]} {worst[1]:.2f} s CPU ({worst[2]:.2f} s wall), target {verdict} on CPU time.",
        "", "| spec | layers | check, CPU | check, wall |", "|---|---:|---:|---:|", *rows, "",
        f"The largest imports of `cnndsl check specs/{worst[0]}.cnn`, by their own time (`PYTHONPROFILEIMPORTTIME=1`, "
        "median of 5 runs):", "", "| module | own import time |", "|---|---:|", *imports, END])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    text = RESULTS.read_text()
    new = section(args.runs)
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + new + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
