"""Running an exported model in onnxruntime: fitting a user's array to the model input, timing the run,
and formatting the outputs as text (the CLI prints it).

Arrays given by a user are H x W x C (the notes' layout, one image), H x W (one single-channel image),
or N x C x H x W (ONNX's layout, a batch); a vector network takes F or N x F.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..util import fmt_shape as _show
from ..util import num as _num
from ..util import time_runs


class InputError(ValueError):
    """An input array that does not fit the model's input."""


def fit_input(x: np.ndarray, dims: list[Any]) -> tuple[np.ndarray, str]:
    """The array as a float32 batch in the model's layout, and the layout it was read as.

    `dims` are the model input's ONNX dims, batch first (a str or None for a symbolic batch).
    """
    if x.dtype.kind not in "fiub":
        raise InputError(f"the input array holds {x.dtype}, not numbers")
    if len(dims) not in (2, 4):  # another layout (an .onnx from elsewhere): the array must be exactly it
        want = [d if isinstance(d, int) else x.shape[0] if x.ndim else 1 for d in dims]
        if list(x.shape) != want:
            raise InputError(f"the input array is {_show(x.shape) or 'a scalar'}, but the model takes "
                             f"{_show(dims) or 'a scalar'}")
        return np.ascontiguousarray(x), f"{_show(x.shape) or 'a scalar'}, as the model takes it"
    rest = tuple(int(d) for d in dims[1:])
    fixed_batch = dims[0] if isinstance(dims[0], int) else None
    x = x.astype(np.float32, copy=False)
    if len(rest) == 3:
        c, h, w = rest
        if x.shape == (h, w, c):
            out, how = x.transpose(2, 0, 1)[None], f"one image, H x W x C = {_show(x.shape)}"
        elif c == 1 and x.shape == (h, w):
            out, how = x[None, None], f"one single-channel image, H x W = {_show(x.shape)}"
        elif x.ndim == 4 and x.shape[1:] == rest:
            out, how = x, f"a batch of {x.shape[0]}, N x C x H x W = {_show(x.shape)}"
        else:
            raise InputError(
                f"the input array is {_show(x.shape)}, but the model takes one image of H x W x C = {h}x{w}x{c} "
                f"or a batch of N x C x H x W = Nx{c}x{h}x{w}"
            )
    else:
        (f,) = rest
        if x.shape == (f,):
            out, how = x[None], f"one vector of {f}"
        elif x.ndim == 2 and x.shape[1] == f:
            out, how = x, f"a batch of {x.shape[0]}, N x F = {_show(x.shape)}"
        else:
            raise InputError(f"the input array is {_show(x.shape)}, but the model takes a vector of {f} or N x {f}")
    if fixed_batch is not None and out.shape[0] != fixed_batch:
        raise InputError(f"the model takes a batch of exactly {fixed_batch}, got {out.shape[0]}")
    return np.ascontiguousarray(out), how


def random_input(dims: list[Any], batch: int, seed: int) -> np.ndarray:
    """Standard normal values in the model's input layout, from the seed."""
    shape = [batch if not isinstance(dims[0], int) else dims[0], *(int(d) for d in dims[1:])]
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@dataclass
class Timing:
    median_ms: float
    runs: int


def run(session, feeds: dict[str, np.ndarray], repeat: int = 10) -> tuple[list[np.ndarray], Timing]:
    """Outputs of one run, and the median latency of `repeat` more (after that warm-up run)."""
    outs = session.run(None, feeds)
    times = time_runs(lambda: session.run(None, feeds), max(repeat, 0))
    return outs, Timing(statistics.median(times) if times else float("nan"), len(times))


def matrix(a: np.ndarray, indent: str = "    ") -> list[str]:
    """A 2-D array as right-aligned rows."""
    cells = [[_num(float(v)) for v in row] for row in a]
    width = max(len(c) for row in cells for c in row)
    return [indent + "  ".join(c.rjust(width) for c in row) for row in cells]


MAX_MATRIX = 16  # print volumes up to 16x16 per channel in full, and at most this many channels


def describe_output(name: str, y: np.ndarray, top: int = 5) -> list[str]:
    """Text lines for one output: its shape, then top-k classes, small matrices, or statistics."""
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "fiu" or y.ndim not in (2, 4):
        return _describe_other(name, y)
    lines = []
    if y.ndim == 2:
        n, f = y.shape
        lines.append(f"output `{name}`: {n} x {f} (N x F)")
        for i in range(n):
            k = min(top, f)
            idx = np.argsort(-y[i], kind="stable")[:k]
            head = f"  [{i}] " if n > 1 else "  "
            lines.append(head + f"top {k}: " + ", ".join(f"class {j} ({y[i, j]:.4g})" for j in idx))
        return lines
    n, c, h, w = y.shape
    lines.append(f"output `{name}`: {n} x {c} x {h} x {w} (N x C x H x W), each {h}x{w}x{c} (H x W x C)")
    if h <= MAX_MATRIX and w <= MAX_MATRIX and n * c <= MAX_MATRIX:
        for i in range(n):
            for ch in range(c):
                lines.append(f"  image {i}, channel {ch}:" if n > 1 else f"  channel {ch}:")
                lines += matrix(y[i, ch])
    else:
        lines.append(f"  min {_num(float(y.min()))}, max {_num(float(y.max()))}, mean {float(y.mean()):.4g}")
    return lines


def _describe_other(name: str, y: Any) -> list[str]:
    """An output of another rank or type (an .onnx model from elsewhere): its shape and a summary."""
    if not isinstance(y, np.ndarray):
        kind = type(y).__name__
        n = len(y) if hasattr(y, "__len__") else None
        return [f"output `{name}`: a {kind}" + (f" of {n} items" if n is not None else "")]
    head = f"output `{name}`: {_show(y.shape) or 'scalar'} ({y.dtype})"
    if y.size == 0:
        return [head]
    if y.dtype.kind == "b":
        return [head, f"  {int(y.sum()):,} true of {y.size:,}"]
    if y.dtype.kind in "fiu":
        if y.size <= MAX_MATRIX:
            return [head, "  " + ", ".join(_num(float(v)) for v in y.ravel())]
        return [head, f"  min {_num(float(y.min()))}, max {_num(float(y.max()))}, mean {float(y.mean()):.4g}"]
    return [head]
