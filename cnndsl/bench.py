"""`cnndsl bench`: onnxruntime latency and throughput of exported specs and .onnx models across batch sizes.

A model is loaded once per file (a spec is compiled and exported in memory, as `cnndsl run` does); each
batch size gets warm-up runs, then timed runs whose median and 90th percentile are reported. The CLI
prints; this module measures and formats. onnxruntime is imported only when a benchmark runs.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .util import fmt_shape, time_runs

# Short names for the execution providers a user is most likely to ask for; any full name passes through.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


class BenchError(ValueError):
    """A model or option that cannot be benchmarked (a provider that is not installed, a fixed batch)."""


@dataclass
class BatchResult:
    batch: int
    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    throughput: float  # samples (images) per second at the median latency


@dataclass
class ModelResult:
    file: str
    name: str
    params: int | None  # None for an .onnx model whose parameters are not all initializers
    macs: int | None  # known for specs only
    input: list[Any]  # the model input's dims, batch first ("N" when the batch is free)
    results: list[BatchResult] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # batch -> why it was not run


def provider_names(spec: str | None) -> list[str]:
    """`cuda,cpu` -> the onnxruntime provider names, checked against the installed onnxruntime."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if not spec:
        return ["CPUExecutionProvider"]
    names = [PROVIDERS.get(p.strip().lower(), p.strip()) for p in spec.split(",") if p.strip()]
    missing = [n for n in names if n not in available]
    if missing:
        raise BenchError(f"execution provider {', '.join(missing)} is not in this onnxruntime (it has "
                         f"{', '.join(available)}); GPU providers need the onnxruntime-gpu package")
    return names


def session(model_bytes_or_path, providers: list[str], threads: int):
    """An onnxruntime session with every graph optimisation, `threads` intra-op threads (0: its default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes_or_path, opts, providers=providers)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default."""
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def measure(sess, batch: int, warmup: int, runs: int, seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> BatchResult:
    """Time `runs` runs of `sess` on a random batch, after `warmup` untimed ones."""
    from .backends import runtime

    inp = sess.get_inputs()[0]
    feeds = {inp.name: runtime.random_input(list(inp.shape), batch, seed)}
    times = time_runs(lambda: sess.run(None, feeds), runs, warmup, progress)
    median = statistics.median(times)
    return BatchResult(batch=batch, runs=runs, median_ms=median, p90_ms=percentile(times, 90), min_ms=min(times),
                       mean_ms=statistics.fmean(times), throughput=batch * 1e3 / median if median > 0 else math.inf)


def fixed_batch(dims: list[Any]) -> int | None:
    """The batch a model input insists on, or None when it is free (a symbolic first dimension)."""
    return dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None


# --- output ------------------------------------------------------------------------------------


def _ms(v: float) -> str:
    return f"{v:,.3g}" if v < 100 else f"{v:,.0f}"


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"


def _count(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def table(models: list[ModelResult], batches: list[int], footer: str) -> str:
    """Models side by side, one column each: parameters, MACs, then median, p90 and throughput per batch."""
    rows: list[tuple[str, str, list[str]]] = [
        ("parameters", "", [_count(m.params) for m in models]),
        ("MACs", "", [_count(m.macs) for m in models]),
        ("input NCHW", "", [fmt_shape(m.input) for m in models]),
    ]
    for b in batches:
        by = [next((r for r in m.results if r.batch == b), None) for m in models]
        na = ["n/a" if r is None else None for r in by]
        rows.append((f"batch {b}", "median ms", [na[i] or _ms(r.median_ms) for i, r in enumerate(by)]))
        rows.append(("", "p90 ms", [na[i] or _ms(r.p90_ms) for i, r in enumerate(by)]))
        rows.append(("", "per second", [na[i] or _rate(r.throughput) for i, r in enumerate(by)]))
    heads = [m.file for m in models]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    widths = [max(len(h), *(len(r[2][i]) for r in rows)) for i, h in enumerate(heads)]
    lines = [" " * (w0 + w1 + 2) + "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    for a, b, cells in rows:
        lines.append(f"{a:<{w0}}  {b:<{w1}}" + "".join("  " + c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    notes = [f"n/a: {m.file} takes batch {fixed_batch(m.input)} only" for m in models if m.skipped]
    return "\n".join([*lines, "", footer, *notes])


def to_json(models: list[ModelResult], meta: dict[str, Any]) -> str:
    """The stable JSON document of `cnndsl bench --json`."""
    out = dict(meta)
    out["models"] = [{**asdict(m), "skipped": {str(b): why for b, why in m.skipped.items()}} for m in models]
    return json.dumps(out, indent=2)
