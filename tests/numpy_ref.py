"""An independent NumPy oracle for the ONNX export: runs a cnndsl graph straight from each layer's
attributes with the notes' formulas (sliding windows, element-wise products and sums), batch first and
channels second (N x C x H x W) so its results compare directly with onnxruntime's.

It reads only the graph and the named weights, never the ONNX nodes, so a wrong lowering (pads,
strides, groups, a transposed weight, a wrong flatten order) shows up as a numeric difference.
"""

from __future__ import annotations

import math

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


def pool2d(x, mode, f, s, pads, ceil):
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
    # average with the padding counted (PyTorch's count_include_pad), the ceil overflow not counted
    inside = np.pad(np.ones((1, 1, h + t + b, w + left + r)), ((0, 0), (0, 0), (0, eb), (0, er)))
    count = np.sum([p for _, _, p in _windows(inside, f[0], f[1], s, (1, 1), ho, wo)], axis=0)
    return np.sum(taps, axis=0) / count


def batchnorm(x, scale, bias, mean, var, eps):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) * scale.reshape(sh) + bias.reshape(sh)


def lrn(x, size, alpha, beta, k):
    c = x.shape[1]
    sq = x ** 2
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c, ch + math.ceil((size - 1) / 2) + 1)
        out[:, ch] = x[:, ch] / (k + alpha / size * sq[:, lo:hi].sum(axis=1)) ** beta
    return out


_erf = np.vectorize(math.erf)

ACT = {
    "none": lambda x, a: x,
    "relu": lambda x, a: np.maximum(x, 0),
    "relu6": lambda x, a: np.clip(x, 0, 6),
    "sigmoid": lambda x, a: 1 / (1 + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
    "leakyrelu": lambda x, a: np.where(x > 0, x, a.get("alpha", 0.01) * x),
    "elu": lambda x, a: np.where(x > 0, x, np.exp(x) - 1),
    "silu": lambda x, a: x / (1 + np.exp(-x)),
    "hardswish": lambda x, a: x * np.clip(x + 3, 0, 6) / 6,
    "hardsigmoid": lambda x, a: np.clip(x + 3, 0, 6) / 6,
    "gelu": lambda x, a: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "softmax": lambda x, a: (lambda e: e / e.sum(axis=1, keepdims=True))(np.exp(x - x.max(axis=1, keepdims=True))),
}


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


def _post(y, node, a, W, bn_prefix=None):
    if a.get("bn"):
        p = bn_prefix or f"{node}.bn"
        y = batchnorm(y, W[f"{p}.scale"], W[f"{p}.bias"], W[f"{p}.mean"], W[f"{p}.var"], a["eps"])
    return ACT[a.get("act", "none")](y, a)


def run(model, weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output (float64, N x C x H x W or N x F) for the input batch x."""
    g, W, vals = model.graph, {k: v.astype(np.float64) for k, v in weights.items()}, {}
    vals[g.graph["input"]] = x.astype(np.float64)
    for n, dd in g.nodes(data=True):
        op, a = dd["op"], dd["attrs"]
        if op == "input":
            continue
        srcs = inputs_of(g, n)
        ins = [vals[s] for s in srcs]
        x0 = ins[0]
        shape_in = g.nodes[srcs[0]]["shape"]
        pads = resolve_pads(shape_in[0], shape_in[1], a) if op in ("conv", "dwconv", "sepconv", "pool") else None
        if op == "conv":
            y = _post(conv2d(x0, W[f"{n}.weight"], W.get(f"{n}.bias"), a["s"], pads, a["d"], a["g"]), n, a, W)
        elif op == "dwconv":
            y = _post(conv2d(x0, W[f"{n}.weight"], W.get(f"{n}.bias"), a["s"], pads, a["d"], x0.shape[1]), n, a, W)
        elif op == "sepconv":
            mid = conv2d(x0, W[f"{n}.dw.weight"], W.get(f"{n}.dw.bias"), a["s"], pads, a["d"], x0.shape[1])
            mid = _post(mid, n, a, W, f"{n}.dw.bn")
            y = _post(conv2d(mid, W[f"{n}.pw.weight"], W.get(f"{n}.pw.bias"), (1, 1), (0, 0, 0, 0)), n, a, W,
                      f"{n}.pw.bn")
        elif op == "deconv":
            y = _post(deconv2d(x0, W[f"{n}.weight"], W.get(f"{n}.bias"), a["s"], a["p"], a["d"], a["g"], a["op"]),
                      n, a, W)
        elif op == "pool":
            y = pool2d(x0, a["mode"], a["f"], a["s"], pads, a["ceil"])
        elif op == "gap":
            y = x0.mean(axis=(2, 3), keepdims=True)
        elif op in ("fc", "flatten"):
            flat = x0.reshape(x0.shape[0], -1)  # C, H, W order, as PyTorch flattens
            y = flat if op == "flatten" else ACT[a["act"]](flat @ W[f"{n}.weight"].T + W.get(f"{n}.bias", 0), a)
        elif op == "bn":
            y = batchnorm(x0, W[f"{n}.scale"], W[f"{n}.bias"], W[f"{n}.mean"], W[f"{n}.var"], a["eps"])
        elif op == "lrn":
            y = lrn(x0, a["size"], a["alpha"], a["beta"], a["k"])
        elif op in ("dropout", "identity"):
            y = x0
        elif op in ACT:
            y = ACT[op](x0, a)
        elif op == "prelu":  # x if x > 0 else a * x, one slope per channel (C x 1 x 1, or F for a vector)
            y = np.where(x0 > 0, x0, W[f"{n}.slope"] * x0)
        elif op == "layernorm":  # normalise over the channels (axis 1) at every position; scale, shift per channel
            c = (slice(None),) + (None,) * (x0.ndim - 2)
            mu, var = x0.mean(axis=1, keepdims=True), x0.var(axis=1, keepdims=True)
            y = (x0 - mu) / np.sqrt(var + a["eps"]) * W[f"{n}.scale"][c] + W[f"{n}.bias"][c]
        elif op == "layerscale":  # one learned factor per channel (C x 1 x 1, or F for a vector)
            y = x0 * W[f"{n}.scale"]
        elif op == "droppath":
            y = x0
        elif op == "split":  # part i of k equal channel groups
            k = x0.shape[1] // a["of"]
            y = x0[:, a["part"] * k:(a["part"] + 1) * k]
        elif op == "shuffle":  # output channel j*g + i is input channel i*(C/g) + j
            nb, c, h, w = x0.shape
            g_ = a["g"]
            y = np.stack([x0[:, i * (c // g_) + j] for j in range(c // g_) for i in range(g_)], axis=1)
        elif op == "adaptivepool":  # PyTorch's windows [floor(i n/out), ceil((i+1) n/out)) along each axis
            (oh, ow), (_, _, h, w) = a["out"], x0.shape
            y = np.zeros((*x0.shape[:2], oh, ow))
            for i in range(oh):
                for j in range(ow):
                    r0, r1 = i * h // oh, -(-(i + 1) * h // oh)
                    c0, c1 = j * w // ow, -(-(j + 1) * w // ow)
                    y[:, :, i, j] = x0[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        elif op == "concat":
            y = np.concatenate(ins, axis=1)
        elif op == "add":
            y = sum(ins)
        elif op == "mul":
            y = math.prod(ins)
        elif op == "upsample":
            k = a["scale"]
            y = x0.repeat(k, axis=2).repeat(k, axis=3) if a["mode"] == "nearest" else resize_bilinear(x0, k)
        else:
            raise NotImplementedError(f"the NumPy reference has no `{op}`: add it with the notes' formula")
        vals[n] = y
    return vals
