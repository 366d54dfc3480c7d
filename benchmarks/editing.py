"""Live-editing benchmarks, in process: what a user waits for between a keystroke and the feedback.

    python benchmarks/editing.py [--runs 9]      # measures, prints, and updates benchmarks/RESULTS.md

  lsp      diagnostics after an edit, as `cnndsl lsp` computes them between didChange and
           publishDiagnostics (cnndsl.editing.analyze + the LSP conversion): ResNet-50,
           generated 10,000-layer specs written out in full (every kind of generate.py) and
           10,000-layer specs of a few lines of library block calls; three kinds of edit, each run
           a text never seen before: a keystroke (a number changed on the middle line: the line is
           parsed again), a new line at the top (a comment: every statement below moves, and the
           last check is moved with them, cnndsl.relocate) and a new layer at the top (`relu` after
           the input: every statement moves and the whole spec is checked again, the worst case)
  serve    one playground update for ResNet-50: the server's answer (check, table and diagram, SVG
           from `dot`), and, with Chromium and Playwright, keystroke to updated page in a real browser
  fmt      `cnndsl fmt` of ResNet-50 and of a 10,000-layer spec
  phases   where one keystroke's CPU time goes in a 10,000-layer spec, stage by stage
run.py includes this section in a full `./dev bench` (suite `editing`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

TARGETS = {"lsp resnet50": 0.030, "lsp 10k": 0.5, "page resnet50": 0.250}

# 10,000-layer specs of a few lines: library blocks called thousands of times from a `repeat` (the edited
# number is the stem's, so every layer after it changes)
BLOCKS = {
    "`bottleneck_stage(16, 2000)` (resnet)":
        "import resnet\ninput 32x32x3\nconv f=3 n=64 p=same\nbottleneck_stage(16, 2000, s=1)\ngap -> fc 10\n",
    "`repeat 1100 { mbconv(32) }` (efficientnet)":
        "import efficientnet\ninput 32x32x3\nconv f=3 n=32 p=same\nrepeat 1100 { mbconv(32, 6, f=3) }\ngap -> fc 10\n",
}


def _stat(fn, runs: int) -> dict:
    times, cpu = [], []
    for i in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "cpu": statistics.median(cpu)}


def _ms(s: dict) -> str:
    return f"{s['median'] * 1000:.0f} ms ({s['min'] * 1000:.0f}-{s['max'] * 1000:.0f})"


def _cpu(s: dict, in_process: bool) -> str:
    return f"{s['cpu'] * 1000:.0f} ms" if in_process else "(several processes)"


def lsp(runs: int) -> list[tuple[str, dict, str]]:
    from cnndsl.editing import COLLECTOR, analyze
    from cnndsl.lsp import to_lsp_diagnostic

    COLLECTOR.enabled = True  # as in `cnndsl lsp`: what a check leaves is frozen out of the collections
    out = []
    cases = [("ResNet-50", (ROOT / "specs" / "resnet50.cnn").read_text(), str(ROOT / "specs" / "resnet50.cnn"),
              "lsp resnet50")]
    for kind in ("chain", "residual", "concat", "wide", "nested"):
        cases.append((f"10,000 layers, `{kind}`", generate(kind, 10_000), "gen.cnn", "lsp 10k"))
    for label, text in BLOCKS.items():
        cases.append((f"10,000 layers, {label}", text, "gen.cnn", "lsp 10k"))
    for label, text, path, key in cases:
        lines = text.split("\n")
        # the middle line with a number of filters (in a short spec of block calls, the first one)
        mid = next((i for i in range(len(lines) // 2, len(lines)) if re.search(r"n=\d+", lines[i])), None)
        mid = mid if mid is not None else next(i for i, line in enumerate(lines) if re.search(r"n=\d+", line))

        def keystroke(i, lines=lines, mid=mid):  # n=8 -> n=9, n=10, ...: a number typed on the middle line
            edited = re.sub(r"n=(\d+)", lambda m: f"n={int(m.group(1)) + 1 + i}", lines[mid], count=1)
            return "\n".join(lines[:mid] + [edited] + lines[mid + 1:])

        def new_line(i, lines=lines):  # i + 1 comment lines after the first: every statement moves anew
            return "\n".join(lines[:1] + ["# an edit"] * (i + 1) + lines[1:])

        top = next(k for k, line in enumerate(lines) if line.startswith("input")) + 1

        def new_layer(i, lines=lines, top=top):  # i + 1 layers after the input: every statement moves and changes
            return "\n".join(lines[:top] + ["relu"] * (i + 1) + lines[top:])

        for what, edit in (("a keystroke", keystroke), ("a new line at the top", new_line),
                           ("a new layer at the top", new_layer)):
            def one(i, edit=edit, path=path):
                a = analyze(edit(i), path)
                lines = a.text.split("\n")
                diags = [to_lsp_diagnostic(d, a, lines) for d in a.diagnostics]
                COLLECTOR.checked()
                return diags

            analyze(text, path)  # the document as opened: the grammar, the imported library, the first parse
            out.append((f"LSP diagnostics after {what}, {label}", _stat(one, runs), key))
    return out


def phases(runs: int) -> list[str]:
    """Where the CPU time of one keystroke's check goes, stage by stage (the stages `compile_text` runs,
    timed one by one on the same text), for the 10,000-layer `residual` spec: median of `runs`."""
    import gc

    from cnndsl import ir, passes
    from cnndsl.analyses import receptive, truncation
    from cnndsl.editing import analyze
    from cnndsl.graph import verify
    from cnndsl.incremental import Reparser
    from cnndsl.model import compile_text

    text = generate("residual", 10_000)
    lines = text.split("\n")
    r = Reparser()
    r.parse(text, "gen.cnn")
    cpu: dict[str, list[float]] = {}

    def timed(name, fn, *args, **kw):
        c0 = time.process_time()
        out = fn(*args, **kw)
        cpu.setdefault(name, []).append(time.process_time() - c0)
        return out

    gc.disable()
    try:
        for i in range(runs):
            mid = next(k for k in range(len(lines) // 2, len(lines)) if "n=8" in lines[k])  # an edit that changes
            edited = "\n".join(lines[:mid] + [lines[mid].replace("n=8", f"n={9 + i}")] + lines[mid + 1:])
            prog = timed("parse, incremental (the edited statement; the others reused)", r.parse, edited, "gen.cnn")
            g, _ = timed("graph build (cnndsl.ir)", ir.build, prog, {"gen.cnn": edited}, None, 50_000, ())
            shapes, _ = timed("shapes (passes.infer_shapes)", passes.infer_shapes, g)
            timed("graph contract (graph.verify)", verify, g)
            timed("costs (passes.count_costs)", passes.count_costs, g, shapes)
            timed("receptive fields (analyses.receptive)", receptive.receptive_fields, g, shapes)
            timed("floor truncation (analyses.truncation)", truncation.diagnostics, g, shapes)
            timed("the whole `compile_text` (the above, the table's rows and totals)", compile_text, edited, "gen.cnn",
                  max_layers=50_000, program=prog)
            timed("the whole `analyze` after the edit (what the LSP runs)", analyze, edited, "gen.cnn", reparser=r)
    finally:
        gc.enable()
    rows = ["Where the CPU time of one keystroke goes, 10,000 layers (`residual`), each stage timed on its own "
            f"(median of {runs}):", "", "| stage | CPU time |", "|---|---:|"]
    rows += [f"| {name} | {statistics.median(v) * 1000:.0f} ms |" for name, v in cpu.items()]
    return rows + [""]


def serve(runs: int) -> list[tuple[str, dict, str]]:
    from cnndsl.serve import Playground, make_server

    spec = ROOT / "specs" / "resnet50.cnn"
    text = spec.read_text()
    pg = Playground(str(spec))
    texts = [text, text + "# an edit\n"]
    pg.check(texts[0])
    out = [("ResNet-50: the server's answer (check, table, diagram by `dot`)",
            _stat(lambda i: pg.check(texts[i % 2]), runs), "server")]
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if exe is None or sync_playwright is None:
        out.append(("ResNet-50: keystroke to updated page (needs Chromium and Playwright)", {}, "page resnet50"))
        return out
    httpd = make_server(str(spec), "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
            _wait(page, 1)
            page.click("#editor")
            page.keyboard.press("Control+End")
            done = [page.evaluate("window.cnndsl.updates")]

            def keystroke(i):
                # type a space or delete it at the end of the spec: each keystroke changes the text
                page.keyboard.press("Space" if i % 2 == 0 else "Backspace")
                done[0] += 1
                _wait(page, done[0])

            out.append(("ResNet-50: keystroke to updated page (Chromium; table and diagram drawn)",
                        _stat(keystroke, runs), "page resnet50"))
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return out


def _wait(page, n: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while page.evaluate(f"!(window.cnndsl && window.cnndsl.updates >= {n})"):
        if time.monotonic() > end:
            raise TimeoutError("the page did not update")
        time.sleep(0.002)


def fmt(runs: int) -> list[tuple[str, dict, str]]:
    from cnndsl.fmt import format_text

    r50 = (ROOT / "specs" / "resnet50.cnn").read_text()
    big = generate("residual", 10_000)
    return [("`cnndsl fmt` ResNet-50", _stat(lambda i: format_text(r50), runs), ""),
            ("`cnndsl fmt` 10,000 layers (`residual`)", _stat(lambda i: format_text(big), max(3, runs // 3)), "")]


def section(runs: int) -> list[str]:
    """The RESULTS.md section: a table of every measurement, with its target where the issue set one."""
    from run import machine  # the machine line of the suite's report (`./dev bench` imports this module)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = ["## Live editing", "",
            f"In process (`python benchmarks/editing.py --runs {runs}`), median (min-max) of {runs} runs; the load "
            f"average when it ran: {load:.1f}: the machine is shared, so the wall time includes waiting for a core; "
            "the CPU time (this process's) does not.", "", *machine(), "",
            "| what | wall time | CPU time | target | met |", "|---|---:|---:|---:|:---:|"]
    for group in (lsp, serve, fmt):
        for label, s, key in group(runs):
            goal = TARGETS.get(key)
            if not s:
                rows.append(f"| {label} | not measured | | {goal * 1000:.0f} ms | - |")
                continue
            met = "-" if goal is None else ("yes" if s["median"] <= goal else "no")
            cpu = _cpu(s, key not in ("page resnet50", "server"))
            rows.append(f"| {label} | {_ms(s)} | {cpu} | {f'{goal * 1000:.0f} ms' if goal else ''} | {met} |")
    return rows + [""] + phases(runs)


def update_results(lines: list[str], path: Path = HERE / "RESULTS.md") -> None:
    """Put the section into RESULTS.md in place of an older one (else before `## Targets`)."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines) + "\n"
    if "## Live editing\n" in text:
        start = text.index("## Live editing\n")
        nxt = text.find("\n## ", start + 1)
        text = text[:start] + block + (text[nxt + 1:] if nxt != -1 else "")
    elif "## Targets\n" in text:
        i = text.index("## Targets\n")
        text = text[:i] + block + "\n" + text[i:]
    else:
        text += "\n" + block
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = ap.parse_args(argv)
    lines = section(args.runs)
    print("\n".join(lines))
    if not args.no_write:
        update_results(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
