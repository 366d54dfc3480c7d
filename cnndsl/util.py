"""Small helpers every stage shares: shape text, products, number and byte formats, one timing loop.

Kept here once so the summary, the diagrams, the diagnostics and the runtime say a shape or a number the
same way. Nothing in this module imports beyond the standard library.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable, Iterable
from typing import Any


def prod(dims: Iterable[int]) -> int:
    """The product of the dimensions (1 for none): a tensor's element count."""
    out = 1
    for d in dims:
        out *= d
    return out


def fmt_shape(dims: Iterable[Any], sep: str = "x") -> str:
    """(28, 28, 6) -> '28x28x6', the notes' H x W x C text; `sep=' x '` for NCHW dims."""
    return sep.join(str(d) for d in dims)


def show(v: Any) -> str:
    """A parameter value as a spec would write it: tuples as HxW, booleans as true/false."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple):
        return fmt_shape(v)
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if hasattr(v, "label"):  # an activation with its parameters: leakyrelu(0.1)
        return v.label()
    return str(v)


def human(n: float, unit: str = "") -> str:
    """12_345_678 -> '12.35 M', with `unit` after a space ('12.35 MB'); powers of 1000, like torchinfo."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def si(n: float) -> str:
    """456 -> '456', 48_120 -> '48.1k', 2_359_808 -> '2.36M': three significant digits for diagrams."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return str(n)


def binary_bytes(n: int) -> str:
    """A byte count in binary units for limits and messages: 1536 -> '1.5 KiB'."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def num(v: float) -> str:
    """A computed value for a person: whole numbers exactly, others to four significant digits."""
    if v == v and abs(v) != float("inf") and float(v).is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


def time_runs(fn: Callable[[], Any], runs: int, warmup: int = 0,
              progress: Callable[[int, int], None] | None = None) -> list[float]:
    """Call `fn` `warmup` times untimed, then `runs` times; each timed call's wall time in milliseconds.

    The one timing loop: `cnndsl run`'s latency and `cnndsl bench` both measure through it.
    """
    for i in range(warmup):
        fn()
        if progress:
            progress(i + 1, warmup + runs)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if progress:
            progress(warmup + i + 1, warmup + runs)
    return times


def decimal_bytes(n: int) -> str:
    """A file size as `ls -h --si` would give it, to one decimal: 45_300 -> '45.3 kB'."""
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def gc_paused(freeze: Callable[[], bool] = lambda: False):
    """Decorator: run the function with the cyclic garbage collector paused, then resume it as it was.

    Compiling allocates many small objects that all stay alive (AST, graph, rows); the collector would scan
    them again and again as they pile up (a 30,000-layer spec took twice as long as it should; a tenth of
    `check`'s time). Objects are still freed as their references go. When `freeze()` says so (a command-line
    process, which ends soon), `gc.freeze` also leaves what was made out of later collections."""

    def wrap(fn):
        @functools.wraps(fn)
        def paused(*args, **kwargs):
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                return fn(*args, **kwargs)
            finally:
                if was_enabled:
                    if freeze():
                        gc.freeze()
                    gc.enable()

        return paused

    return wrap
