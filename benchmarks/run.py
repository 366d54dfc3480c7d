"""The cnndsl benchmark suite: `./dev bench` runs it and writes benchmarks/RESULTS.md and the scaling plot.

    python benchmarks/run.py [--runs 5] [--only startup,zoo,scaling,peers,latency,editing] [--out benchmarks/RESULTS.md]

Every command is timed as a user waits for it: the whole process, from outside (wall clock around
the child, peak RSS from os.wait4), `--runs` times; tables give the median and the spread (min-max).
  zoo       `cnndsl check`, `summary`, `compile` (weights included) and `render` of every specs/*.cnn
  scaling   `cnndsl check` of generated specs of 10 to 10,000 layers (benchmarks/generate.py)
  peers     `cnndsl compile`/`summary` of ResNet-50 against torch.onnx.export (TorchScript and dynamo
            exporters) and torchinfo.summary, each a whole Python process (benchmarks/peers.py)
  editing   diagnostics after an edit (the language server), playground updates, fmt (benchmarks/editing.py)
  latency   onnxruntime latency, batch 1 and 8, of cnndsl's ResNet-50, MobileNet-v2 and VGG-16 against
            the torch-exported models, same session options and thread count
peers and latency need the `bench` extra (torch, torchvision, torchinfo); without it they are reported
as absent and the rest is still measured. The plot needs matplotlib (also in the extra); without it an
SVG is drawn by hand.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import KINDS, generate  # noqa: E402

SIZES = (10, 100, 1000, 10_000)
LATENCY_MODELS = ("resnet50", "mobilenet_v2", "vgg16")
TARGETS_NOTE = "targets are for a 2-core machine; medians"


# --- measuring a process from outside ----------------------------------------------------------


@dataclass
class Proc:
    wall: float  # seconds
    rss: int  # peak resident set size, bytes
    code: int
    err: str


def run_once(cmd: list[str], cwd: Path = ROOT, env: dict | None = None) -> Proc:
    """Run cmd to completion; wall time around the child and its own peak RSS (os.wait4)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Proc(wall, rss, p.returncode, text[-2000:])


@dataclass
class Stat:
    median: float
    lo: float
    hi: float
    rss: int  # median peak RSS, bytes
    runs: int
    ok: bool
    err: str = ""

    def cell(self, unit: str = "s") -> str:
        if not self.ok:
            return "failed"
        if unit == "ms":
            return f"{self.median * 1e3:.0f} ms ({self.lo * 1e3:.0f}-{self.hi * 1e3:.0f})"
        return f"{self.median:.2f} s ({self.lo:.2f}-{self.hi:.2f})"


def measure(cmd: list[str], runs: int, label: str = "", **kw) -> Stat:
    procs = []
    for i in range(runs):
        progress(f"{label} [{i + 1}/{runs}]")
        p = run_once(cmd, **kw)
        if p.code != 0:
            return Stat(p.wall, p.wall, p.wall, p.rss, i + 1, False, p.err)
        procs.append(p)
    walls = [p.wall for p in procs]
    return Stat(statistics.median(walls), min(walls), max(walls), int(statistics.median(p.rss for p in procs)),
                runs, True)


def progress(text: str) -> None:
    sys.stderr.write(f"\r\x1b[K{text}" if sys.stderr.isatty() else f"{text}\n")
    sys.stderr.flush()


def cnndsl() -> list[str]:
    """The `cnndsl` console script beside this interpreter (what a user runs), else `python -m cnndsl`."""
    exe = Path(sys.executable).parent / "cnndsl"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cnndsl"]


def have(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


# --- the machine ------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB memory"
    except (OSError, StopIteration, ValueError):
        pass
    versions = []
    for pkg in ("cnndsl", "lark", "networkx", "numpy", "onnx", "onnxruntime", "graphviz", "torch", "torchvision",
                "torchinfo", "onnxscript", "matplotlib"):
        try:
            versions.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{pkg} absent")
    dot = "absent"
    if shutil.which("dot"):
        r = subprocess.run(["dot", "-V"], capture_output=True, text=True)
        dot = (r.stderr or r.stdout).strip()
    return [
        f"- machine: {cpu}, {os.cpu_count()} cores{mem}; {platform.platform()}",
        f"- Python {platform.python_version()}; " + ", ".join(versions),
        f"- Graphviz: {dot}",
    ]


# --- the suites -------------------------------------------------------------------------------


def zoo(runs: int, tmp: Path) -> tuple[list[str], dict]:
    from cnndsl import compile_file

    specs = sorted(ROOT.glob("specs/*.cnn"))
    render_ok = shutil.which("dot") is not None
    rows, facts = [], {}
    for spec in specs:
        rel = str(spec.relative_to(ROOT))
        m = compile_file(spec)
        stats = {}
        for cmd, extra in (("check", []), ("summary", []), ("compile", ["-o", str(tmp / "zoo.onnx")]),
                           ("render", ["-o", str(tmp / "zoo.svg")])):
            stats[cmd] = measure([*cnndsl(), cmd, rel, *extra], runs, f"zoo: {cmd} {spec.name}")
        facts[spec.stem] = {"weight_bytes": m.totals.weight_bytes, **{k: vars(v) for k, v in stats.items()}}
        rss = stats["compile"].rss
        rows.append(f"| {spec.stem} | {len(m.layers)} | {m.totals.params:,} | {stats['check'].cell()} | "
                    f"{stats['summary'].cell()} | {stats['compile'].cell()} | {stats['render'].cell()} | "
                    f"{rss / 2**20:,.0f} MiB{_weight_ratio(rss, m.totals.weight_bytes)} |")
    head = [
        "| spec | layers | parameters | check | summary | compile | render "
        "| compile peak RSS (x weight bytes, for weights of 100 MB or more) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    note = [] if render_ok else ["", "Graphviz's `dot` is absent: `render` wrote .dot files instead of SVG."]
    return head + rows + note, facts


def _weight_ratio(rss: int, weight_bytes: int) -> str:
    """` (0.89x)`: peak memory over weight bytes, shown only where the weights dominate (>= 100 MB);
    below that the interpreter and libraries (about 65 MiB) make the ratio meaningless."""
    return f" ({rss / weight_bytes:.2f}x)" if weight_bytes >= 100_000_000 else ""


def imports_audit() -> list[str]:
    """Which heavy modules `check` and `summary` import (they must not import onnx, onnxruntime, graphviz)."""
    code = ("import sys, io, contextlib; from cnndsl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main([sys.argv[1], 'specs/resnet50.cnn'])\n"
            "print(' '.join(sorted(m for m in ('onnx', 'onnxruntime', 'graphviz', 'numpy', 'torch') "
            "if m in sys.modules)))")
    lines = []
    for cmd in ("check", "summary", "compile"):
        r = subprocess.run([sys.executable, "-c", code, cmd], capture_output=True, text=True, cwd=ROOT)
        mods = r.stdout.strip() or "none of onnx, onnxruntime, graphviz, numpy"
        lines.append(f"- `cnndsl {cmd}` imports: {mods}")
    return lines


def startup(runs: int) -> tuple[list[str], dict]:
    """What a user waits for before any work: `--help`, `--version`, a subcommand's help (no compiler loaded)."""
    rows, facts = ["| command | whole process |", "|---|---:|"], {}
    for args in (["--version"], ["--help"], ["summary", "--help"], ["completion", "bash"]):
        s = measure([*cnndsl(), *args], runs, f"startup: {' '.join(args)}")
        facts[" ".join(args)] = vars(s)
        rows.append(f"| `cnndsl {' '.join(args)}` | {s.cell()} |")
    return rows, facts


def scaling(runs: int, tmp: Path) -> tuple[list[str], dict]:
    from cnndsl import compile_text

    data: dict[str, list[tuple[int, Stat]]] = {}
    for kind in KINDS:
        for n in SIZES:
            text = generate(kind, n)
            path = tmp / f"{kind}{n}.cnn"
            path.write_text(text)
            layers = len(compile_text(text).layers)
            st = measure([*cnndsl(), "check", str(path)], runs, f"scaling: {kind} {n}")
            data.setdefault(kind, []).append((layers, st))
    base = min(st.median for series in data.values() for _, st in series)  # start-up: the smallest spec
    head = ["| spec | " + " | ".join(f"~{n:,} layers" for n in SIZES) + " | us/layer at 1k | us/layer at 10k |",
            "|---|" + "---:|" * (len(SIZES) + 2)]
    rows = []
    for kind, series in data.items():
        cells = [f"{st.cell()} [{n:,}]" for n, st in series]
        per = {n: (st.median - base) / n * 1e6 for n, st in series}
        n1k, n10k = series[-2][0], series[-1][0]
        rows.append(f"| {kind} | " + " | ".join(cells) + f" | {per[n1k]:.0f} | {per[n10k]:.0f} |")
    facts = {k: [(n, vars(st)) for n, st in v] for k, v in data.items()}
    facts["startup"] = base
    return head + rows, facts


def plot(facts: dict, out_base: Path) -> str:
    """time vs layers, log-log, one line per kind; PNG with matplotlib, else a hand-drawn SVG."""
    series = {k: [(n, st["median"]) for n, st in v] for k, v in facts.items() if k != "startup"}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _svg_plot(series, out_base.with_suffix(".svg"))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for kind, pts in series.items():
        ax.plot([n for n, _ in pts], [t for _, t in pts], marker="o", label=kind)
    # what a linear cost looks like on these axes: start-up plus the slowest kind's cost per layer
    slope = max((pts[-1][1] - facts["startup"]) / pts[-1][0] for pts in series.values())
    xs = [10 * 10 ** (i / 8) for i in range(25)]
    ax.plot(xs, [facts["startup"] + slope * x for x in xs], "k:", linewidth=1, label="start-up + linear")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("layers in the spec")
    ax.set_ylabel("`cnndsl check`, whole process (s)")
    ax.set_title("cnndsl check: time vs layers (median)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out_base.with_suffix(".png")
    fig.savefig(path)
    return path.name


def _svg_plot(series: dict, path: Path) -> str:
    import math

    w, h, pad = 640, 400, 60
    all_t = [t for pts in series.values() for _, t in pts]
    t0, t1 = math.log10(min(all_t)), math.log10(max(all_t))
    x = lambda n: pad + (math.log10(n) - 1) / 3 * (w - 2 * pad)  # noqa: E731 - 10 .. 10,000 layers
    y = lambda t: h - pad - (math.log10(t) - t0) / max(t1 - t0, 1e-9) * (h - 2 * pad)  # noqa: E731
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle">cnndsl check: time vs layers (median, log-log)</text>']
    for n in (10, 100, 1000, 10_000):
        parts.append(f'<text x="{x(n):.0f}" y="{h - pad + 18}" text-anchor="middle">{n:,}</text>')
    for t in (min(all_t), max(all_t)):
        parts.append(f'<text x="{pad - 6}" y="{y(t):.0f}" text-anchor="end">{t:.2f} s</text>')
    for i, (kind, pts) in enumerate(series.items()):
        c = colours[i % len(colours)]
        d = " ".join(f"{x(n):.1f},{y(t):.1f}" for n, t in pts)
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{d}"/>')
        parts.append(f'<text x="{w - pad + 4}" y="{y(pts[-1][1]):.0f}" fill="{c}">{kind}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts))
    return path.name


def peers(runs: int, tmp: Path) -> tuple[list[str], dict]:
    py = [sys.executable, str(HERE / "peers.py")]
    spec = "specs/resnet50.cnn"
    res = {
        "cnndsl compile": measure([*cnndsl(), "compile", spec, "-o", str(tmp / "r50.onnx")], runs, "peers: compile"),
        "torch.onnx.export (TorchScript)": measure([*py, "export", "resnet50", str(tmp / "t.onnx")], runs,
                                                   "peers: torch.onnx.export"),
        "torch.onnx.export (dynamo)": measure([*py, "export", "resnet50", str(tmp / "d.onnx"), "--dynamo"], runs,
                                              "peers: torch.onnx.export dynamo"),
        "cnndsl summary": measure([*cnndsl(), "summary", spec], runs, "peers: summary"),
        "torchinfo.summary": measure([*py, "summary", "resnet50"], runs, "peers: torchinfo"),
    }
    lines = ["| ResNet-50 | whole process | peak RSS | cnndsl is ... faster |", "|---|---:|---:|---:|"]
    for name, st in res.items():
        ref = res["cnndsl compile"] if "export" in name else res["cnndsl summary"] if "torchinfo" in name else None
        ratio = f"{st.median / ref.median:.1f}x" if ref and st.ok and ref.ok else ""
        lines.append(f"| {name} | {st.cell()} | {st.rss / 2**20:,.0f} MiB | {ratio} |")
    for name, st in res.items():
        if not st.ok:
            lines.append(f"\n`{name}` failed: `{st.err.strip().splitlines()[-1] if st.err.strip() else '?'}`")
    return lines, {k: vars(v) for k, v in res.items()}


def latency(runs: int, tmp: Path) -> tuple[list[str], dict]:
    import onnxruntime as ort

    from cnndsl import bench as cb

    threads = os.cpu_count() or 1
    lines = [f"onnxruntime {ort.__version__}, CPUExecutionProvider, {threads} intra-op threads, every graph "
             f"optimisation; 2 warm-up runs, then {max(2 * runs, 10)} runs of each model interleaved; "
             "median (min-max) ms.",
             "", "| model | batch | cnndsl export | torch export (TorchScript) | ratio cnndsl/torch |",
             "|---|---:|---:|---:|---:|"]
    facts = {}
    for name in LATENCY_MODELS:
        ours, theirs = tmp / f"{name}.cnndsl.onnx", tmp / f"{name}.torch.onnx"
        progress(f"latency: exporting {name}")
        for cmd in ([*cnndsl(), "compile", f"specs/{name}.cnn", "-o", str(ours)],
                    [sys.executable, str(HERE / "peers.py"), "export", name, str(theirs)]):
            p = run_once(cmd)
            if p.code != 0:
                lines.append(f"| {name} | | export failed: `{p.err.strip().splitlines()[-1]}` | | |")
                break
        else:
            sessions = [cb.session(str(ours), ["CPUExecutionProvider"], threads),
                        cb.session(str(theirs), ["CPUExecutionProvider"], threads)]
            for batch in (1, 8):
                progress(f"latency: {name} batch {batch}")
                times: list[list[float]] = [[], []]
                feeds = []
                for s in sessions:
                    inp = s.get_inputs()[0]
                    from cnndsl.backends.runtime import random_input

                    feeds.append({inp.name: random_input(list(inp.shape), batch, 0)})
                for s, f in zip(sessions, feeds, strict=True):
                    for _ in range(2):
                        s.run(None, f)
                for _ in range(max(2 * runs, 10)):
                    for i, (s, f) in enumerate(zip(sessions, feeds, strict=True)):
                        t0 = time.perf_counter()
                        s.run(None, f)
                        times[i].append((time.perf_counter() - t0) * 1e3)
                med = [statistics.median(t) for t in times]
                cells = [f"{m:.1f} ({min(t):.1f}-{max(t):.1f})" for m, t in zip(med, times, strict=True)]
                lines.append(f"| {name} | {batch} | {cells[0]} | {cells[1]} | {med[0] / med[1]:.2f} |")
                facts[f"{name}/{batch}"] = {"cnndsl_ms": med[0], "torch_ms": med[1], "ratio": med[0] / med[1]}
    return lines, facts


# --- the report -------------------------------------------------------------------------------

FINDINGS = """\
What profiling found, and what was changed (cProfile; before -> after on this machine):

- Front end (cnndsl/syntax.py). Lark built a parse tree with `propagate_positions`, then a
  `v_args(meta=True, inline=True)` Transformer walked it: 2.2-3.0 s to parse a 15,000-layer spec, two
  thirds of it in lark's PropagatePositions and the per-call wrappers. The AST is now built by lark's
  internal transformer while LALR parses, with spans computed from the children as propagate_positions
  would (`keep_all_tokens`, so the `{`, `)` and keywords that start or end a node are seen): 0.65-0.9 s.
  ASTs and diagnostics are identical on every spec, 2,200 mutated specs and 800 generated ones.
- Grammar analysis (LALR tables) cost 40-60 ms of every run. The cache meant to keep it was never
  read: `Lark.load(f, transformer=...)` does not take a transformer, the error was swallowed, and the
  tables were rebuilt on every run (65 ms for `parser()` in process); had it been read, it would have
  unpickled whatever file sat in the user's cache folder. The cache is now lark's own serialised tables
  (`memo_serialize`, what its standalone generator writes) stored as JSON, never a pickle, loaded with
  `Lark._load_from_dict` (`$XDG_CACHE_HOME/cnndsl`, or `~/.cache/cnndsl`, keyed by the grammar text and
  the lark and Python versions, written atomically, ignored when not owned by the user): `parser()` 65 ms
  -> 7.9 ms; `cnndsl check specs/lenet5.cnn`, whole process, median of 9: 364 ms -> 304 ms (measured
  while the machine's load average was 7-9).
- Hostile specs (issue #15; `/usr/bin/time -f "%e s %M KB" cnndsl check X.cnn`, load average 7-9, so
  times are 3-4x an idle machine's): 5 MB of blank lines 1.3 s and 54 MB (was 4.8 GB: the grammar's
  whitespace terminals repeated an alternation group, and Python's `re` keeps a backtracking frame per
  repetition); `repeat 1000000000 { }` 3.2 s, 40 MB (never finished); nested empty repeats 4.8 s; an
  empty block doubled 30 times 20 s, 176 MB (never finished; each of the 250,000 calls the budget
  allows costs about 80 us here); 40,000 bad lines 8.2 s, 90 MB (was 58 s: the renderer split the file
  for every diagnostic).
- Garbage collection: compiling allocates many small objects that stay alive, and the cyclic collector
  rescanned them as they piled up, so time per layer grew with the size (30,000 layers: 6.9 s; 3.3 s
  with the collector paused during compile, `cnndsl.model`).
- A check for a merge taking the same value twice compared each input with every earlier one
  (`u in inputs[:i]`), quadratic in a merge's inputs: 0.66 s for a 10,000-branch concat; now a set.
- What was left in `check` then: Python start-up (about 20 ms), importing networkx (about 85-130 ms: it
  loads its backends' entry points) and lark (25 ms), cnndsl's own modules (40 ms); the work itself is a
  few ms for ResNet-50. Since issue #11's start-up work, no stage imports networkx (`Model.graph` makes
  one on demand), the classes `check` imports are records rather than generated dataclasses, and the
  contextual lexer is made as the parse needs it (the `check` section below). `check` and `summary`
  import neither onnx, onnxruntime, graphviz, networkx nor numpy.
- `compile` of ResNet-50: imports numpy and onnx (about 0.2 s), draws 25.6 M weights and writes
  102 MB; the ONNX export streams the weights one tensor at a time, so VGG-16's peak memory stays under
  its weight bytes. Drawing He-normal weights took 0.45 s of it (numpy's float32 normal generator), so
  the default is now Kaiming uniform, U(-b, b) with b = sqrt(6 / fan_in), the same variance and
  PyTorch's own default family: 0.20 s for the same weights.
- onnxruntime latency: cnndsl's and torch's exports run within about 5% of each other either way, and
  the medians move by more than that between runs (ResNet-50 batch 1: 1.12 in a 1-run trial, 0.97-1.00
  in the suite), with overlapping min-max ranges. The graphs onnxruntime actually runs are the same:
  saving the optimised model (`SessionOptions.optimized_model_filepath`, every optimisation) gives, for
  MobileNet-v2, 56 nodes for either export (52 fused Conv, GlobalAveragePool, Flatten, Gemm,
  ReorderOutput), and for ResNet-50, 58 for either (53 fused Conv, MaxPool, GlobalAveragePool, Flatten,
  Gemm, ReorderOutput): batch norm, Clip (relu6), ReLU and the adds are fused away in both. So the two are at parity,
  and a ratio above 1.0 here is the machine's noise, not a slower graph.
- Absolute times carry the noise of a shared 2-core machine; the ratios were measured side by side,
  and the latency runs interleave the two models.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    ap.add_argument("--only", default="startup,zoo,scaling,peers,latency,editing", help="comma-separated suites to run")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where to write the report")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    out = Path(args.out)
    started = time.time()
    report = ["# cnndsl benchmarks", "",
              "Generated by `./dev bench` (`python benchmarks/run.py" + (f" {' '.join(argv)}" if argv else "")
              + "`); do not edit by hand. Whole-process wall time and peak RSS, measured from outside the "
              f"process, {args.runs} runs each: median (min-max); the {TARGETS_NOTE}.",
              "", "## Machine", "", *machine(), ""]
    facts: dict = {}
    torch_ok = have("torch", "torchvision", "torchinfo")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "startup" in only:
            lines, facts["startup"] = startup(args.runs)
            report += ["## Start-up", "", *lines, ""]
        if "zoo" in only:
            lines, facts["zoo"] = zoo(args.runs, tmp)
            report += ["## The zoo", "", *lines, "", "Imports (measured by running each command in-process):", "",
                       *imports_audit(), ""]
        if "scaling" in only:
            lines, facts["scaling"] = scaling(args.runs, tmp)
            name = plot(facts["scaling"], HERE / "scaling")
            report += ["## Scaling", "", "`cnndsl check` of generated specs (benchmarks/generate.py): whole process, "
                       "median (min-max) [exact layer count]. us/layer: time beyond start-up (the fastest small "
                       "spec) per layer; flat means linear.", "", *lines, "", f"![time vs layers]({name})", ""]
        if "peers" in only or "latency" in only:
            report += ["## Against PyTorch", ""]
            if not torch_ok:
                report += ["torch, torchvision or torchinfo is not installed, so the peers were not measured: "
                           "`pip install -e '.[bench]'` (see the README) and run `./dev bench` again.", ""]
            else:
                if "peers" in only:
                    lines, facts["peers"] = peers(args.runs, tmp)
                    report += ["Whole process, imports included: cnndsl's command against a Python process that "
                               "builds torchvision's ResNet-50 (weights=None) and exports or summarises it.", "",
                               *lines, ""]
                if "latency" in only:
                    lines, facts["latency"] = latency(args.runs, tmp)
                    report += ["### onnxruntime latency of the exported models", "", *lines, ""]
    if "editing" in only:  # the language server, the playground and fmt, in process (benchmarks/editing.py)
        from editing import section

        report += section(args.runs)
    report += ["## Targets", "", *targets(facts), "", "## Findings", "", FINDINGS,
               f"Suite run time: {time.time() - started:.0f} s."]
    progress("")
    import analyses_cost
    import memory  # their sections (minutes to run) are kept from their last `--write`

    old = out.read_text() if out.exists() else ""
    for begin, end in ((memory.BEGIN, memory.END), (analyses_cost.BEGIN, analyses_cost.END)):
        if begin in old and end in old:
            report += ["", old[old.index(begin): old.index(end) + len(end)]]
    out.write_text("\n".join(report) + "\n")
    (HERE / "results.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")
    print(f"wrote {out}")
    return 0


def targets(f: dict) -> list[str]:
    """The issue's targets, with the measured value and whether it is met."""
    rows = ["| target | measured | met |", "|---|---:|:---:|"]

    def row(what: str, value: str, ok: bool | None) -> None:
        rows.append(f"| {what} | {value} | {'yes' if ok else 'no' if ok is not None else '-'} |")

    zoo = f.get("zoo", {})
    if "resnet50" in zoo:
        z = zoo["resnet50"]
        row("`cnndsl check specs/resnet50.cnn` <= 0.3 s", f"{z['check']['median']:.2f} s", z["check"]["median"] <= 0.3)
        row("`cnndsl summary specs/resnet50.cnn` <= 0.3 s", f"{z['summary']['median']:.2f} s",
            z["summary"]["median"] <= 0.3)
        row("`cnndsl compile specs/resnet50.cnn` <= 0.7 s", f"{z['compile']['median']:.2f} s",
            z["compile"]["median"] <= 0.7)
    if "vgg16" in zoo:
        z = zoo["vgg16"]
        x = z["compile"]["rss"] / z["weight_bytes"]
        row("VGG-16 compile peak memory <= 2x its weight bytes", f"{x:.2f}x", x <= 2)
    p = f.get("peers", {})
    if p:
        for ours, theirs, goal in (("cnndsl summary", "torchinfo.summary", 10),
                                   ("cnndsl compile", "torch.onnx.export (TorchScript)", 5),
                                   ("cnndsl compile", "torch.onnx.export (dynamo)", 5)):
            if p[ours]["ok"] and p[theirs]["ok"]:
                r = p[theirs]["median"] / p[ours]["median"]
                row(f"`{ours}` >= {goal}x faster than {theirs}", f"{r:.1f}x", r >= goal)
    for key, v in f.get("latency", {}).items():
        row(f"onnxruntime latency {key.replace('/', ', batch ')}: cnndsl/torch <= 1.0", f"{v['ratio']:.2f}",
            v["ratio"] <= 1.0)
    s = f.get("scaling", {})
    if s:
        worst = max(st["median"] for series in (v for k, v in s.items() if k != "startup") for _, st in series[-1:])
        row("10,000-layer `check` <= 3 s (slowest kind)", f"{worst:.2f} s", worst <= 3)
        lin = []
        for kind, series in s.items():
            if kind == "startup":
                continue
            (n1, a), (n2, b) = series[-2], series[-1]
            per1, per2 = (a["median"] - s["startup"]) / n1, (b["median"] - s["startup"]) / n2
            lin.append((per2 / per1, kind))
        r, kind = max(lin)
        row("linear: time per layer at 10k / at 1k (worst kind) <= 1.5", f"{r:.2f} ({kind})", r <= 1.5)
    return rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
