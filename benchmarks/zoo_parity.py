"""The same function as torchvision, for all 68 classifiers at their evaluation size (issue #11's long campaign).

    python benchmarks/zoo_parity.py                  # every model, cheapest first -> benchmarks/zoo_parity.json
    python benchmarks/zoo_parity.py vgg11 vgg13      # only these (their rows of the JSON are replaced)
    python benchmarks/zoo_parity.py --table          # rewrite docs/zoo.md's parity table from the JSON

Each model is checked by `same_function` of tests/test_torchvision_zoo.py (the test CNNDSL_FULL=1 runs):
torchvision's model with random weights and random batch-norm statistics, its state dict mapped onto the
spec's weights, cnndsl's ONNX export (written as `cnndsl compile` writes it, with external data beyond
2 GB) run by onnxruntime against PyTorch eval on a batch of 2 at the evaluation input size; the largest
difference on the logits relative to the largest logit (within 1e-4; where PyTorch's own float32 logits are
that far from its float64 ones, PyTorch in float64 is the arbiter: see `agrees`). Each model runs in a
fresh process, one at a time (the largest, regnet_y_128gf at 384, peaked at 3.8 GB); the JSON records its
wall and CPU seconds and its peak memory, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFERENCE = json.loads((ROOT / "tests" / "data" / "torchvision_zoo.json").read_text())["models"]
JSON = HERE / "zoo_parity.json"
DOC = ROOT / "docs" / "zoo.md"
BEGIN, END = "<!-- zoo-parity:begin (benchmarks/zoo_parity.py --table) -->", "<!-- zoo-parity:end -->"
TOLERANCE = 1e-4  # the issue's: relative to the largest logit


def one(name: str) -> None:
    """Child: check one model, print its result as one JSON line."""
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from test_torchvision_zoo import same_function

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        err, arbiter = same_function(name, REFERENCE[name]["input"], Path(tmp))
    print(json.dumps({"err": err, "float64": arbiter, "seconds": time.perf_counter() - t0, "check": check_version()}))


def agrees(row: dict) -> bool:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_torchvision_zoo import agrees

    return "err" in row and agrees((row["err"], row.get("float64")))


def _difference(row: dict) -> str:
    """The difference, and the float64 arbiter's verdict where float32 was not enough."""
    text = f"{row['err']:.1e}"
    if row.get("float64"):
        ours, theirs = row["float64"]
        text += f" (from float64: {ours:.1e}, PyTorch float32's own {theirs:.1e})"
    return text + ("" if agrees(row) else " DIFFERENT")


def check_version() -> str:
    """The version of the check (a hash of the test file): a row made by another version is marked stale."""
    import hashlib

    return hashlib.sha256((ROOT / "tests" / "test_torchvision_zoo.py").read_bytes()).hexdigest()[:12]


def run(name: str) -> dict:
    """Parent: one model in a fresh process; its wall and CPU seconds and peak memory from os.wait4."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, __file__, "--one", name], cwd=ROOT, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    code = os.waitstatus_to_exitcode(status)
    row = {"model": name, "input": REFERENCE[name]["input"], "params": REFERENCE[name]["trainable"],
           "wall": round(wall, 1), "cpu": round(usage.ru_utime + usage.ru_stime, 1),
           "maxrss_mb": usage.ru_maxrss // 1024, "exit": code}
    if code == 0:
        row.update(json.loads(stdout.strip().splitlines()[-1]))
    else:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()] or [f"exit {code} (no output)"]
        row["failure"] = lines[-1][:300]
    return row


def campaign(names: list[str]) -> None:
    data = json.loads(JSON.read_text()) if JSON.exists() else {"rows": {}}
    import onnxruntime
    import torch
    import torchvision

    data["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
                       f"Python {platform.python_version()}")
    data["versions"] = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
                        f"onnxruntime {onnxruntime.__version__}")
    for name in names:
        print(f"{name} at {REFERENCE[name]['input']} ...", end=" ", flush=True)
        row = run(name)
        data["rows"][name] = row
        JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        if "err" in row:
            print(f"{'ok' if agrees(row) else 'DIFFERENT'} {_difference(row)}  "
                  f"{row['wall']} s wall, {row['cpu']} s CPU, {row['maxrss_mb']} MB", flush=True)
        else:
            print(f"FAILED: {row['failure']}", flush=True)


def table() -> str:
    data = json.loads(JSON.read_text())
    lines = [f"Measured on {data['machine']}; {data['versions']}; `python benchmarks/zoo_parity.py`.", "",
             "| model | input | trainable parameters | max relative difference | wall s | CPU s | peak memory |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    total = 0.0
    for name in sorted(REFERENCE):
        r, ref = data["rows"].get(name), REFERENCE[name]
        if r is None:
            lines.append(f"| `{name}` | {ref['input']} | {ref['trainable']:,} | not run | | | |")
            continue
        total += r["wall"]
        diff = _difference(r) if "err" in r else f"failed: {r['failure']}"
        if r.get("check") != check_version():
            diff += " (an earlier version of the check)"
        lines.append(f"| `{name}` | {r['input']} | {r['params']:,} | {diff} | {r['wall']:.0f} | {r['cpu']:.0f} "
                     f"| {r['maxrss_mb'] / 1024:.1f} GB |")
    current = {n: r for n, r in data["rows"].items() if r.get("check") == check_version()}
    worst = max(((r.get("err", float("inf")), n) for n, r in current.items()), default=(float("nan"), "none"))
    lines += ["", f"{len(data['rows'])} of {len(REFERENCE)} run, {len(current)} with this version of the check, in "
              f"{total / 60:.0f} minutes of wall time (CPU seconds: the machine was shared); the largest difference "
              f"of the current check {worst[0]:.1e} ({worst[1]}), against the tolerance {TOLERANCE:.0e}; "
              f"{sum(agrees(r) for r in current.values())} of {len(current)} agree"
              + (f" ({', '.join(sorted(n for n, r in current.items() if r.get('float64') and agrees(r)))} by the "
                 "float64 arbiter)" if any(r.get("float64") for r in current.values()) else "") + "."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="models (default: all 68, cheapest first)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--table", action="store_true", help="rewrite docs/zoo.md's parity table from the JSON")
    a = ap.parse_args()
    if a.one:
        one(a.one)
        return 0
    if a.table:
        doc = DOC.read_text(encoding="utf-8")
        head, rest = doc.split(BEGIN, 1)
        DOC.write_text(f"{head}{BEGIN}\n{table()}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")
        return 0
    unknown = [n for n in a.names if n not in REFERENCE]
    if unknown:
        ap.error(f"not torchvision classifiers of the zoo: {', '.join(unknown)}")
    names = a.names or sorted(REFERENCE, key=lambda n: REFERENCE[n]["macs"])
    campaign(names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
