"""An independent NumPy oracle for the ONNX export: runs a cnndsl graph straight from each layer's
attributes with the notes' formulas (sliding windows, element-wise products and sums), batch first and
channels second (N x C x H x W) so its results compare directly with onnxruntime's.

It reads only the graph and the named weights, never the ONNX nodes, so a wrong lowering (pads,
strides, groups, a transposed weight, a wrong flatten order) shows up as a numeric difference. This module
holds the formulas; which formula computes which kind is each kind's `reference` in tests/kinds.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnndsl.ir import inputs_of
from cnndsl.layers import resolve_pads


def _out_size(n: int, f: int, s: int, p0: int, p1: int, d: int = 1, ceil: bool = False) -> int:
    eff = d * (f - 1) + 1
    if not ceil:
        return (n + p0 + p1 - eff) // s + 1
    out = -(-(n + p0 + p1 - eff) // s) + 1
    return out - 1 if (out - 1) * s >= n + p0 else out  # PyTorch: the last window starts inside


def _windows(xp: np.ndarray, fh: int, fw: int, s: tuple, d: tuple, ho: int, wo: int):
    """(i, j, the N x C x ho x wo slice under kernel tap (i, j)) for every tap."""
    for i in range(fh):
        for j in range(fw):
            rows = slice(i * d[0], i * d[0] + s[0] * (ho - 1) + 1, s[0])
            yield i, j, xp[:, :, rows, j * d[1]: j * d[1] + s[1] * (wo - 1) + 1: s[1]]


def conv2d(x, w, b, s, pads, d=(1, 1), groups=1):
    """The notes' convolution (cross-correlation) with padding, stride, dilation and groups; w is OIHW."""
    n, c, h, wd = x.shape
    o, cg, fh, fw = w.shape
    t, left, bt, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bt), (left, r)))
    ho, wo = _out_size(h, fh, s[0], t, bt, d[0]), _out_size(wd, fw, s[1], left, r, d[1])
    out = np.zeros((n, o, ho, wo), np.float64)
    og = o // groups
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        for i, j, patch in _windows(xg, fh, fw, s, d, ho, wo):
            out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out + (0 if b is None else b[None, :, None, None])


def deconv2d(x, w, b, s, pads, d, groups, op):
    """Transposed convolution as a scatter: input pixel (h, w) adds x * W[c, o] at (h*s + i*d, w*s + j*d)."""
    n, c, h, wd = x.shape
    _, og, fh, fw = w.shape
    t, left, bt, r = pads
    full = np.zeros((n, og * groups, (h - 1) * s[0] + d[0] * (fh - 1) + 1 + op[0],
                     (wd - 1) * s[1] + d[1] * (fw - 1) + 1 + op[1]))
    cg = c // groups
    for g in range(groups):
        for i in range(fh):
            for j in range(fw):
                contrib = np.einsum("nchw,co->nohw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, i, j])
                full[:, g * og:(g + 1) * og, i * d[0]: i * d[0] + s[0] * (h - 1) + 1: s[0],
                     j * d[1]: j * d[1] + s[1] * (wd - 1) + 1: s[1]] += contrib
    out = full[:, :, t: full.shape[2] - bt, left: full.shape[3] - r]
    return out + (0 if b is None else b[None, :, None, None])


def pool2d(x, mode, f, s, pads, ceil, count_pad=True):
    n, c, h, w = x.shape
    t, left, b, r = pads
    ho, wo = _out_size(h, f[0], s[0], t, b, 1, ceil), _out_size(w, f[1], s[1], left, r, 1, ceil)
    # windows of the ceil mode may run past the padding: pad further, with values that do not count
    eb = max((ho - 1) * s[0] + f[0] - (h + t + b), 0)
    er = max((wo - 1) * s[1] + f[1] - (w + left + r), 0)
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=fill)
    xp = np.pad(xp, ((0, 0), (0, 0), (0, eb), (0, er)), constant_values=fill)
    taps = [p for _, _, p in _windows(xp, f[0], f[1], s, (1, 1), ho, wo)]
    if mode == "max":
        return np.max(taps, axis=0)
    # average with the padding counted (PyTorch's count_include_pad), the ceil overflow not counted; without
    # count_pad, only the pixels of the image count (Keras' padding='same')
    if count_pad:
        inside = np.pad(np.ones((1, 1, h + t + b, w + left + r)), ((0, 0), (0, 0), (0, eb), (0, er)))
    else:
        inside = np.pad(np.ones((1, 1, h, w)), ((0, 0), (0, 0), (t, b + eb), (left, r + er)))
    count = np.sum([p for _, _, p in _windows(inside, f[0], f[1], s, (1, 1), ho, wo)], axis=0)
    return np.sum(taps, axis=0) / count


def per_channel(v, x):
    """A vector of C values shaped to broadcast over axis 1 (the channels) of x, N x C x H x W or N x F."""
    return np.asarray(v).reshape((1, -1) + (1,) * (x.ndim - 2))


def batchnorm(x, scale, bias, mean, var, eps):
    def c(v):
        return per_channel(v, x)

    return (x - c(mean)) / np.sqrt(c(var) + eps) * c(scale) + c(bias)


def lrn(x, size, alpha, beta, k):
    c = x.shape[1]
    sq = x ** 2
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c, ch + math.ceil((size - 1) / 2) + 1)
        out[:, ch] = x[:, ch] / (k + alpha / size * sq[:, lo:hi].sum(axis=1)) ** beta
    return out


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def softmax(x):
    """Over axis 1: the channels of N x C x H x W, the features of N x F."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def resize_bilinear(x, scale):
    """PyTorch's bilinear upsampling with align_corners=False (ONNX's half_pixel)."""
    def axis_weights(n):
        o = np.arange(n * scale)
        src = np.maximum((o + 0.5) / scale - 0.5, 0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, src - i0

    h0, h1, lh = axis_weights(x.shape[2])
    w0, w1, lw = axis_weights(x.shape[3])
    rows = x[:, :, h0] * (1 - lh)[None, None, :, None] + x[:, :, h1] * lh[None, None, :, None]
    return rows[:, :, :, w0] * (1 - lw) + rows[:, :, :, w1] * lw


@dataclass(frozen=True)
class Layer:
    """What a kind's reference formula (tests/kinds.py) sees of one layer: its inputs and attributes."""

    name: str  # the node id; its weights are `<name>.<suffix>`
    a: dict[str, Any]  # the resolved attributes (`g.nodes[name]["attrs"]`)
    xs: list[np.ndarray]  # the input values in slot order, float64, N x C x H x W or N x F
    shapes: list[tuple[int, ...]]  # the inputs' cnndsl shapes (H x W x C or (n,))
    weights: Mapping[str, np.ndarray]

    @property
    def x(self) -> np.ndarray:
        return self.xs[0]

    def w(self, suffix: str) -> np.ndarray | None:
        """The weight `<name>.<suffix>`, or None when the layer has none (`bias=false`)."""
        return self.weights.get(f"{self.name}.{suffix}")

    def pads(self) -> tuple[int, int, int, int]:
        """The window's explicit (top, left, bottom, right) padding, `same` resolved for this input."""
        return resolve_pads(self.shapes[0][0], self.shapes[0][1], self.a)

    def post(self, y: np.ndarray, bn: str = "bn") -> np.ndarray:
        """A conv-like kind's optional batch norm (weights `<name>.<bn>.*`) then its `act=`."""
        if self.a.get("bn"):
            y = batchnorm(y, *(self.w(f"{bn}.{s}") for s in ("scale", "bias", "mean", "var")), self.a["eps"])
        return activation(self.a.get("act", "none"), y, self.a)


def activation(name: str, y: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    """`act=name` applied to y: the activation kind's own reference formula (`a` gives e.g. leakyrelu's alpha)."""
    if name == "none":
        return y
    from kinds import KINDS  # NOTE: imported here, as tests/kinds.py imports this module's formulas

    return KINDS[name].reference(Layer(name, a, [y], [], {}))


def run(model, weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output (float64, N x C x H x W or N x F) for the input batch x."""
    from kinds import KINDS

    g, W, vals = model.graph, {k: v.astype(np.float64) for k, v in weights.items()}, {}
    vals[g.graph["input"]] = x.astype(np.float64)
    for n, d in g.nodes(data=True):
        if d["op"] == "input":
            continue
        if d["op"] not in KINDS:
            raise NotImplementedError(f"tests/kinds.py has no entry for `{d['op']}`: add one with its NumPy formula")
        srcs = inputs_of(g, n)
        layer = Layer(n, d["attrs"], [vals[s] for s in srcs], [g.nodes[s]["shape"] for s in srcs], W)
        vals[n] = KINDS[d["op"]].reference(layer)
    return vals
