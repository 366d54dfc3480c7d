"""Per-kind test data: what the tests know about each layer kind, one `Kind` entry per kind in KINDS.

Adding a kind to cnndsl.layers means adding its entry here, and nothing else in tests/;
tests/test_registry.py fails, naming the kind and what is missing, until the entry is complete. An entry
holds:

- `cases`: ONNX round-trip specs (tests/test_onnx.py). Each is exported, passes onnx's full check and
  ONNX's own shape inference, runs in onnxruntime with random weights, and must match `reference` to
  1e-4. Each must use the kind (or, for an activation, `act=` it). Cover every parameter that changes the
  lowering (bias off, bn, act, strides, each padding form, groups, vectors as well as volumes), on tiny
  inputs (a few pixels, a few channels).
- `reference(ly) -> array`: the kind's formula in NumPy, independent of the ONNX nodes.
  `ly` is a tests/numpy_ref.py `Layer`: `ly.x` / `ly.xs` (the inputs, float64, N x C x H x W or N x F),
  `ly.a` (the resolved attributes), `ly.w("weight")` (a weight by suffix, None when absent), `ly.pads()`,
  `ly.post(y)` (conv-like `bn=`/`act=`). Formulas shared by kinds live in numpy_ref.py.
- `figures`: at least one hand-checked `Figure` (tests/test_formulas.py): a spec, and its total
  parameters, MACs and last layer's shape, with `how` saying how the numbers were worked out by hand
  (from the notes' formulas or a paper's table, never by running cnndsl).
- `points` (element-wise and other activations): hand-checked values of the function on a vector input,
  run through onnxruntime (tests/test_formulas.py).
- the spec generator's branch (tests/specgen.py), at least one of:
  `volume=Draw(snippet, share)`, one layer on an H x W x C volume: `snippet(g, (h, w, c), mode)` returns
  `(text, output shape)`, with the output shape computed here from the formulas (not by cnndsl), or None
  when the kind cannot serve `mode` (`keep`: same H x W; `down`: H x W halved, rounding up; `any`).
  `vector=Draw(snippet, share)`, one layer on a vector: `snippet(g, (n,))` -> `(text, output shape)`.
  `g` is specgen's `Gen`: `g.i(lo, hi)`, `g.pick(options)`, `g.coin()`, `g.num(v)`, `g.post()`,
  `g.window_args(h, w, mode, dilate)`. `share` is how often it is drawn relative to the other kinds
  (1 for most; the activations share one slot between them).
  `merge=Merge(...)` for a kind that joins branches: tests/specgen.py draws it in `kind { a | b }` and
  `kind(a, b)`.

An activation usable as `act=` (cnndsl.layers.ACTIVATIONS) is one `activation(name, formula, points)`
line: it gets the shared cases (as a layer, and as `act=` on fc and conv), figure and generator branch.
Any other kind is one entry in the KINDS literal, as `prelu`'s (a learned slope per channel) shows:

    "prelu": Kind(
        cases=("input 5x5x3\nconv f=3 n=4 -> prelu", "input 1x2x3\nflatten\nfc 4 -> prelu init=0.1"),
        reference=lambda ly: np.where(ly.x > 0, ly.x, per_channel(ly.w("slope"), ly.x) * ly.x),
        figures=(Figure("input 56x56x64\nprelu", 64, 0, (56, 56, 64), "one slope per channel: 64 ..."),),
        points=((-4, 0, 2), (-1, 0, 2)),  # the slopes start at 0.25
        volume=Draw(_unchanged(lambda g: g.pick(("prelu", "prelu init=0.1")))),
        vector=Draw(lambda g, shape: (g.pick(("prelu", "prelu init=0.1")), shape)),
    ),

(`numpy_ref.per_channel(v, x)` shapes C values to broadcast over x's channel axis.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy_ref import Layer, batchnorm, conv2d, deconv2d, gelu, lrn, per_channel, pool2d, resize_bilinear, softmax

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Figure:
    """A hand-checked number: `spec`'s total parameters and MACs, and its last layer's shape."""

    spec: str
    params: int
    macs: int
    shape: Shape
    how: str  # the arithmetic, by hand


@dataclass(frozen=True)
class Draw:
    """How tests/specgen.py draws one layer of a kind: `snippet` makes it, `share` is how often."""

    snippet: Callable[..., tuple[str, Shape] | None]
    share: float = 1.0


@dataclass(frozen=True)
class Merge:
    """How tests/specgen.py merges branches with a merge kind."""

    shape: Callable[[list[Shape]], Shape]  # the merged shape of the branches' shapes
    equal: bool  # the inputs must have equal shapes (the generator fits the channels); else only equal H x W
    gates: bool = False  # a branch may be a 1 x 1 x C gate that scales the others (squeeze-and-excitation)


@dataclass(frozen=True)
class Kind:
    """Everything the tests need about one layer kind (see the module docstring for each field)."""

    cases: tuple[str, ...]
    reference: Callable[[Layer], np.ndarray]
    figures: tuple[Figure, ...]
    volume: Draw | None = None
    vector: Draw | None = None
    merge: Merge | None = None
    points: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (inputs, outputs) on a vector


# --- generator snippets shared by several kinds ------------------------------------------------------------


def _unchanged(text: Callable) -> Callable:
    """A volume snippet for a kind that keeps its input's shape; it cannot halve H x W."""

    def snippet(g, shape, mode):
        return None if mode == "down" else (text(g), shape)

    return snippet


def _divisors(c: int) -> list[int]:
    return [d for d in range(1, c + 1) if c % d == 0]


# --- convolutions ----------------------------------------------------------------------------------------


def _gen_conv(g, shape, mode):
    h, w, c = shape
    groups = g.pick(_divisors(c)) if g.coin() else 1
    n = groups * g.i(1, max(1, g.MAX_C // groups))
    if mode != "down" and g.i(0, 2) == 0:  # a pointwise conv, often written positionally or in call form
        form = g.pick(("plain", "positional", "call"))
        if form == "positional":
            return f"conv f=1 {g.num(n, simple=True)}", (h, w, n)
        if form == "call":
            return f"conv(f=1, n={g.num(n)})", (h, w, n)
        return f"conv f=1 n={g.num(n)}", (h, w, n)
    args, ho, wo = g.window_args(h, w, mode, dilate=True)
    if g.coin() and "f=3 " in args + " " and "d=" not in args and groups == 1 and n <= 4:
        g.features.add("fixed-kernel")
        args += f" w={g.pick(('vertical', 'sobel_h', 'laplacian'))}"
    gt = f" g={groups}" if groups > 1 else ""
    return f"conv {args} n={g.num(n)}{gt}{g.post()}", (ho, wo, n)


def _gen_dwconv(g, shape, mode):
    h, w, c = shape
    m = g.i(1, 2) if c <= 6 else 1
    args, ho, wo = g.window_args(h, w, mode, dilate=True)
    return f"dwconv {args}" + (f" m={m}" if m > 1 else "") + g.post(), (ho, wo, c * m)


def _gen_sepconv(g, shape, mode):
    h, w, _ = shape
    n = g.i(1, g.MAX_C)
    args, ho, wo = g.window_args(h, w, mode, dilate=True)
    return f"sepconv {args} n={g.num(n)}{g.post()}", (ho, wo, n)


def _gen_deconv(g, shape, mode):
    h, w, c = shape
    if mode != "any" or max(h, w) > 10:  # it grows H x W; small inputs keep the generated specs fast
        return None
    groups = g.pick(_divisors(c)) if g.coin() else 1
    n = groups * g.i(1, max(1, 8 // groups))
    f, s, d = g.i(1, 4), g.i(1, 2), g.pick((1, 1, 2))
    op = g.i(0, s - 1)
    p = g.i(0, 1)
    # the transposed convolution's size: (n - 1)s - 2p + d(f - 1) + op + 1
    ho = (h - 1) * s - 2 * p + d * (f - 1) + op + 1
    wo = (w - 1) * s - 2 * p + d * (f - 1) + op + 1
    if ho < 1 or wo < 1:
        p = 0
        ho, wo = (h - 1) * s + d * (f - 1) + op + 1, (w - 1) * s + d * (f - 1) + op + 1
    text = f"deconv f={f} s={s} p={p} n={n}" + (f" d={d}" if d > 1 else "") + (f" op={op}" if op else "")
    return text + (f" g={groups}" if groups > 1 else "") + g.post(), (ho, wo, n)


# --- pooling, reshaping, normalisation -------------------------------------------------------------------


def _gen_pool(g, shape, mode):
    h, w, c = shape
    mode_word = g.pick(("", "avg ", "mode=max ", "max "))
    args, ho, wo = g.window_args(h, w, mode, dilate=False, pool=True)
    return f"pool {mode_word}{args}", (ho, wo, c)


def _gen_upsample(g, shape, mode):
    h, w, c = shape
    if mode != "any" or max(h, w) > 10:
        return None
    k = g.i(1, 2)
    return g.pick((f"upsample {k}", f"upsample scale={k} mode=bilinear", f"upsample {k} mode=nearest")), (
        h * k, w * k, c)


def _side(a, name: str, axis: int) -> int:
    """A `pad` side as the docs define it: named, else from p, else 0 (independent of cnndsl's pad_sides)."""
    return a[name] if a[name] is not None else (a["p"][axis] if a["p"] is not None else 0)


def _gen_pad(g, shape):
    h, w, c = shape
    if g.coin():
        p = g.i(0, 2)
        return f"pad {p}", (h + 2 * p, w + 2 * p, c)
    top, bottom, left, right = g.i(0, 1), g.i(0, 2), g.i(0, 1), g.i(0, 2)
    return f"pad top={top} bottom={bottom} left={left} right={right}", (h + top + bottom, w + left + right, c)


def _gen_fc_volume(g, shape, mode):
    if mode != "any":
        return None
    n = g.i(1, 10)
    g.features.add("fc-on-volume")
    return f"fc {n}", (n,)


def _gen_fc_vector(g, shape):
    n = g.i(1, 10)
    return g.pick((f"fc {g.num(n, simple=True)}", f"fc(n={n})", f"fc n={n} act=relu", f"fc {n} bias=false")), (n,)


def _gen_flatten_volume(g, shape, mode):
    if mode != "any":
        return None
    g.features.add("fc-on-volume")
    return "flatten", (shape[0] * shape[1] * shape[2],)


def _bn_text(g):
    return g.pick(("bn", "bn eps=0.001"))


def _lrn_text(g):
    return g.pick(("lrn", f"lrn size={g.pick((1, 3, 5))} alpha=0.001 beta=0.5 k=1"))


def _dropout_text(g):
    return g.pick(("dropout", "dropout 0.3", "dropout rate=0.1"))


def _gen_split(g, shape):
    h, w, c = shape
    k = g.pick([k for k in (1, 2, 3, 4) if c % k == 0])
    i = g.i(0, k - 1)
    return g.pick((f"split {i} of={k}", f"split(part={i}, of={k})")), (h, w, c // k)


def _gen_adaptivepool(g, shape):
    h, w, c = shape
    oh, ow = g.i(1, h + 2), g.i(1, w + 2)
    return g.pick((f"adaptivepool {oh}x{ow}", f"adaptivepool out={oh}x{ow}")), (oh, ow, c)


def _adaptive_avg(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """PyTorch's adaptive average pooling: window i along an axis of n covers [floor(i n/out), ceil((i+1) n/out))."""
    h, w = x.shape[2:]
    y = np.zeros((*x.shape[:2], oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = i * h // oh, -(-(i + 1) * h // oh)
            c0, c1 = j * w // ow, -(-(j + 1) * w // ow)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def _concat_shape(shapes: list[Shape]) -> Shape:
    if len(shapes[0]) == 1:
        return (sum(s[0] for s in shapes),)
    return (*shapes[0][:2], sum(s[2] for s in shapes))


def _largest(shapes: list[Shape]) -> Shape:
    """The full shape among equal shapes and 1 x 1 x C gates."""
    return max(shapes, key=lambda s: (len(s), s[0] * s[1] if len(s) == 3 else 0))


def _depthwise(ly: Layer, prefix: str = "") -> np.ndarray:
    """One filter per input channel (groups = channels): dwconv, and sepconv's first half."""
    return conv2d(ly.x, ly.w(f"{prefix}weight"), ly.w(f"{prefix}bias"), ly.a["s"], ly.pads(), ly.a["d"], ly.x.shape[1])


# --- the table -------------------------------------------------------------------------------------------

CONV_56 = "a 3x3 conv 64 -> 64 on 56x56 (p=1 keeps 56x56): 3*3*64 * 64 = 36,864 weights; " \
          "MACs = weights * output positions = 36,864 * 56*56 = 115,605,504"

KINDS: dict[str, Kind] = {
    "conv": Kind(
        cases=(
            "input 9x11x4\nconv f=3 n=6 s=2 p=1",
            "input 12x10x4\nconv f=3x5 n=6 s=1x2 p=same d=2 g=2 bias=false bn=true act=relu",
            "input 10x9x4\nconv f=4 s=3 p=same n=4 g=4",
            "input 7x7x3\nconv f=1x7 n=4 p=0x3 act=leakyrelu",
            "input 6x6x2\nconv f=3 n=2 w=[sobel_v, sobel_h] bias=false",
            "input 6x6x3\nconv f=3 n=2 w=vertical",
        ),
        reference=lambda ly: ly.post(conv2d(ly.x, ly.w("weight"), ly.w("bias"), ly.a["s"], ly.pads(), ly.a["d"],
                                            ly.a["g"])),
        figures=(
            Figure("input 56x56x64\nconv f=3 p=1 n=64 bias=false", 36_864, 115_605_504, (56, 56, 64), CONV_56),
            Figure("input 56x56x64\nconv f=3 p=1 n=64", 36_928, 115_605_504, (56, 56, 64),
                   "the same conv with a bias per filter: 36,864 + 64 = 36,928; a bias adds no MACs"),
            Figure("input 56x56x64\nconv f=3 p=1 n=64 g=4 bias=false", 9_216, 28_901_376, (56, 56, 64),
                   "4 groups: each filter sees 64/4 = 16 channels: 3*3*16 * 64 = 9,216; * 56*56 = 28,901,376"),
            Figure("input 56x56x64\nconv f=3 p=2 d=2 n=64 bias=false", 36_864, 115_605_504, (56, 56, 64),
                   "dilation 2 spreads the 3x3 taps over 5x5 (p=2 keeps 56x56) but keeps 9 taps: as the first"),
            Figure("input 17x17x768\nconv f=1x7 p=0x3 n=192 bias=false", 1_032_192, 298_303_488, (17, 17, 192),
                   "Inception-v3's 1x7: 1*7*768 * 192 = 1,032,192 weights; * 17*17 = 298,303,488 MACs"),
            Figure("input 56x56x64\nconv f=3 p=1 n=64 bias=false bn=true", 36_864 + 256, 115_605_504, (56, 56, 64),
                   "the first conv plus batch norm's scale, shift, mean and variance: 4 * 64 = 256"),
            Figure("input 6x6x3\nconv f=3 n=5", 140, 2_160, (4, 4, 5),
                   "the notes' MobileNet example: (3*3*3 + 1) * 5 = 140; 3*3*3 * 4*4 (6 - 3 + 1 = 4) * 5 = 2,160"),
        ),
        volume=Draw(_gen_conv, share=3),
    ),
    "dwconv": Kind(
        cases=("input 10x10x3\ndwconv f=3 s=2 p=same m=2 bn=true act=relu6", "input 7x8x4\ndwconv f=3 d=2 bias=false"),
        reference=lambda ly: ly.post(_depthwise(ly)),
        figures=(
            Figure("input 112x112x32\ndwconv f=3 p=1 bias=false", 288, 3_612_672, (112, 112, 32),
                   "MobileNet's first depthwise conv: one 3x3 filter per channel, 9 * 32 = 288; * 112*112 = 3,612,672"),
            Figure("input 112x112x32\ndwconv f=3 p=1 m=2 bias=false", 576, 7_225_344, (112, 112, 64),
                   "2 filters per channel: 9 * 64 = 576 weights, 64 output channels, 576 * 112*112 = 7,225,344"),
        ),
        volume=Draw(_gen_dwconv),
    ),
    "sepconv": Kind(
        cases=("input 9x9x4\nsepconv f=3 n=8 p=1 bn=true act=relu6",
               "input 8x8x3\nsepconv f=5 s=2 n=4 p=same act=silu"),
        # depthwise (+ its bn and act), then pointwise 1x1 (+ its bn and act)
        reference=lambda ly: ly.post(conv2d(ly.post(_depthwise(ly, "dw."), "dw.bn"), ly.w("pw.weight"), ly.w("pw.bias"),
                                            (1, 1), (0, 0, 0, 0)), "pw.bn"),
        figures=(
            Figure("input 6x6x3\nsepconv f=3 n=5", 50, 672, (4, 4, 5),
                   "the notes' MobileNet example: depthwise 3*3 * 3 + 3 biases = 30 and 3*3 * 4*4 * 3 = 432 MACs, "
                   "pointwise 3 * 5 + 5 biases = 20 and 3 * 4*4 * 5 = 240 MACs: 50 parameters, 672 MACs"),
        ),
        volume=Draw(_gen_sepconv),
    ),
    "deconv": Kind(
        cases=(
            "input 5x5x4\ndeconv f=3 s=2 p=1 op=1 n=6",
            "input 4x6x4\ndeconv f=2x3 s=2 n=4 g=2 bias=false bn=true act=relu",
            "input 5x5x2\ndeconv f=3 d=2 s=3 p=2 n=3",
        ),
        reference=lambda ly: ly.post(deconv2d(ly.x, ly.w("weight"), ly.w("bias"), ly.a["s"], ly.a["p"], ly.a["d"],
                                              ly.a["g"], ly.a["op"])),
        figures=(
            Figure("input 8x8x16\ndeconv f=2 s=2 n=8", 520, 32_768, (16, 16, 8),
                   "U-Net's up-convolution: 16 * 8 * 2*2 = 512 weights + 8 biases = 520; each of the 8*8*16 input "
                   "values scatters onto 2*2 * 8 outputs: 1,024 * 32 = 32,768 MACs; (8 - 1) * 2 + 2 = 16"),
        ),
        volume=Draw(_gen_deconv),
    ),
    "pool": Kind(
        cases=(
            "input 9x9x3\npool f=3 s=2",
            "input 10x10x3\npool avg f=3 s=2 p=1",
            "input 10x10x3\npool f=3 s=2 ceil=true",
            "input 11x11x2\npool avg f=3 s=2 p=1 ceil=true",
            "input 8x9x2\npool avg f=2 ceil=true",
            "input 7x7x2\npool f=3 s=2 p=same",
            "input 7x7x2\npool f=2x3 s=1x2",
            "input 7x7x2\npool avg f=3 s=1 p=1 count_pad=false",
            "input 6x6x2\npool avg f=2 s=2 p=same count_pad=false",
            "input 6x7x2\npool avg f=3 s=2 p=2 count_pad=false ceil=true",
        ),
        reference=lambda ly: pool2d(ly.x, ly.a["mode"], ly.a["f"], ly.a["s"], ly.pads(), ly.a["ceil"],
                                    ly.a["count_pad"]),
        figures=(
            Figure("input 13x13x256\npool f=3 s=2", 0, 0, (6, 6, 256),
                   "AlexNet's last pool: floor((13 - 3) / 2) + 1 = 6; pooling learns nothing, and counts no MACs"),
        ),
        volume=Draw(_gen_pool),
    ),
    "gap": Kind(
        cases=("input 5x7x3\ngap",),
        reference=lambda ly: ly.x.mean(axis=(2, 3), keepdims=True),
        figures=(Figure("input 7x7x1024\ngap", 0, 0, (1, 1, 1024), "the mean of each channel: 1 x 1 x C"),),
        volume=Draw(lambda g, shape, mode: None if mode != "any" else ("gap", (1, 1, shape[2]))),
    ),
    "fc": Kind(
        cases=("input 4x5x3\nfc 7", "input 2x2x3\nflatten\nfc 5 act=tanh -> fc 3 bias=false"),
        # the volume is flattened in C, H, W order, as PyTorch flattens
        reference=lambda ly: ly.post(ly.x.reshape(len(ly.x), -1) @ ly.w("weight").T
                                   + (0 if ly.w("bias") is None else ly.w("bias"))),
        figures=(
            Figure("input 7x7x512\nfc 4096", 102_764_544, 102_760_448, (4096,),
                   "VGG-16's fc6: 7*7*512 = 25,088 inputs * 4,096 = 102,760,448 weights and MACs, + 4,096 biases"),
            Figure("input 5x5x16\nfc 120", 48_120, 48_000, (120,),
                   "LeNet-5's FC3 in the notes: 5*5*16 = 400 inputs: 400 * 120 + 120 = 48,120"),
        ),
        volume=Draw(_gen_fc_volume),
        vector=Draw(_gen_fc_vector, share=2),
    ),
    "flatten": Kind(
        cases=("input 3x4x2\nflatten -> fc 3",),
        reference=lambda ly: ly.x.reshape(len(ly.x), -1),
        figures=(Figure("input 8x8x4\nflatten", 0, 0, (256,), "8 * 8 * 4 = 256 values in a vector"),),
        volume=Draw(_gen_flatten_volume),
        vector=Draw(lambda g, shape: ("flatten", shape)),
    ),
    "bn": Kind(
        cases=("input 6x6x3\nbn", "input 2x2x2\nflatten\nfc 6 -> bn eps=0.001"),
        reference=lambda ly: batchnorm(ly.x, ly.w("scale"), ly.w("bias"), ly.w("mean"), ly.w("var"), ly.a["eps"]),
        figures=(
            Figure("input 56x56x64\nbn", 256, 0, (56, 56, 64),
                   "scale, shift, running mean and variance per channel: 4 * 64 = 256 (Keras: 128 + 128)"),
        ),
        volume=Draw(_unchanged(_bn_text)),
        vector=Draw(lambda g, shape: (_bn_text(g), shape)),
    ),
    "lrn": Kind(
        cases=("input 5x5x7\nlrn size=3 alpha=0.001 beta=0.75 k=2", "input 4x4x6\nlrn"),
        reference=lambda ly: lrn(ly.x, ly.a["size"], ly.a["alpha"], ly.a["beta"], ly.a["k"]),
        figures=(Figure("input 27x27x96\nlrn", 0, 0, (27, 27, 96),
                        "AlexNet's LRN after pool 1: a normalisation across channels, nothing learned"),),
        volume=Draw(_unchanged(_lrn_text)),
    ),
    "dropout": Kind(
        cases=("input 6x6x3\nconv f=3 n=4 -> dropout 0.3 -> relu", "input 2x2x2\nflatten\nfc 4 -> dropout"),
        reference=lambda ly: ly.x,  # an identity at inference
        figures=(Figure("input 5x5x16\nfc 120 -> dropout 0.5", 48_120, 48_000, (120,),
                        "LeNet-5's FC3 (400 * 120 + 120 = 48,120); dropout learns and computes nothing"),),
        volume=Draw(_unchanged(_dropout_text)),
        vector=Draw(lambda g, shape: (_dropout_text(g), shape)),
    ),
    "identity": Kind(
        cases=("input 6x6x3\nadd { identity | conv f=3 n=3 p=same }", "input 6x6x3\nidentity"),
        reference=lambda ly: ly.x,
        figures=(Figure("input 6x6x3\nidentity", 0, 0, (6, 6, 3), "its input, unchanged"),),
        volume=Draw(_unchanged(lambda g: "identity")),
        vector=Draw(lambda g, shape: ("identity", shape)),
    ),
    "prelu": Kind(
        cases=("input 5x5x3\nconv f=3 n=4 -> prelu", "input 1x2x3\nflatten\nfc 4 -> prelu init=0.1"),
        # x if x > 0 else a * x, one slope a per channel (C x 1 x 1 for a volume, F for a vector)
        reference=lambda ly: np.where(ly.x > 0, ly.x, per_channel(ly.w("slope"), ly.x) * ly.x),
        figures=(Figure("input 56x56x64\nprelu", 64, 0, (56, 56, 64),
                        "one learnable slope per channel: 64 parameters on 64 channels; no MACs counted, as for "
                        "every activation"),),
        points=((-4, 0, 2), (-1, 0, 2)),  # the slopes start at 0.25: -4 * 0.25 = -1
        volume=Draw(_unchanged(lambda g: g.pick(("prelu", "prelu init=0.1")))),
        vector=Draw(lambda g, shape: (g.pick(("prelu", "prelu init=0.1")), shape)),
    ),
    "layernorm": Kind(
        cases=("input 5x4x6\nconv f=3 n=8 p=1 -> layernorm eps=1e-6", "input 1x2x3\nflatten\nfc 5 -> layernorm"),
        # normalised over the channels (axis 1) at every position, then a scale and a shift per channel
        reference=lambda ly: (ly.x - ly.x.mean(axis=1, keepdims=True))
        / np.sqrt(ly.x.var(axis=1, keepdims=True) + ly.a["eps"]) * per_channel(ly.w("scale"), ly.x)
        + per_channel(ly.w("bias"), ly.x),
        figures=(Figure("input 56x56x96\nlayernorm eps=1e-6", 192, 0, (56, 56, 96),
                        "ConvNeXt-T's first LayerNorm2d (torchvision features[0][1]): a scale and a shift per "
                        "channel, 2 * 96 = 192; normalising counts no MACs"),),
        volume=Draw(_unchanged(lambda g: g.pick(("layernorm", "layernorm eps=1e-6")))),
        vector=Draw(lambda g, shape: (g.pick(("layernorm", "layernorm eps=1e-6")), shape)),
    ),
    "layerscale": Kind(
        cases=("input 5x5x3\nconv f=3 n=4 -> layerscale init=0.5", "input 1x2x3\nflatten\nfc 4 -> layerscale"),
        reference=lambda ly: ly.x * per_channel(ly.w("scale"), ly.x),  # one learned factor per channel
        figures=(Figure("input 56x56x96\nlayerscale", 96, 0, (56, 56, 96),
                        "ConvNeXt's layer scale: one factor per channel (CNBlock.layer_scale is 96 x 1 x 1), 96"),),
        volume=Draw(_unchanged(lambda g: g.pick(("layerscale", "layerscale init=0.5")))),
        vector=Draw(lambda g, shape: (g.pick(("layerscale", "layerscale init=0.5")), shape)),
    ),
    "droppath": Kind(
        cases=("input 6x6x4\nresidual { conv f=3 n=4 p=1 -> droppath 0.1 }",),
        reference=lambda ly: ly.x,  # stochastic depth drops nothing at inference
        figures=(Figure("input 7x7x96\ndroppath 0.1", 0, 0, (7, 7, 96), "an identity at inference: no weights"),),
        volume=Draw(_unchanged(lambda g: g.pick(("droppath", "droppath 0.2")))),
    ),
    "split": Kind(
        cases=("input 6x6x8\nconcat { split 0 | split 1 -> conv f=1 n=4 }", "input 4x4x6\nsplit 2 of=3",
               "input 1x2x3\nflatten\nsplit 1"),
        # part i of k equal channel groups: channels [i C/k, (i + 1) C/k)
        reference=lambda ly: ly.x[:, ly.a["part"] * (ly.x.shape[1] // ly.a["of"]):
                                  (ly.a["part"] + 1) * (ly.x.shape[1] // ly.a["of"])],
        figures=(Figure("input 28x28x116\nsplit 1", 0, 0, (28, 28, 58),
                        "ShuffleNet-v2 1x's stage 2 unit: 116 channels split into halves of 116 / 2 = 58"),),
        volume=Draw(lambda g, shape, mode: None if mode == "down" else _gen_split(g, shape)),
    ),
    "shuffle": Kind(
        cases=("input 5x4x6\nconv f=1 n=6 -> shuffle 2", "input 3x3x12\nshuffle 3 -> conv f=1 n=2"),
        # output channel j*g + i is input channel i*(C/g) + j
        reference=lambda ly: np.stack([ly.x[:, i * (ly.x.shape[1] // ly.a["g"]) + j]
                                       for j in range(ly.x.shape[1] // ly.a["g"]) for i in range(ly.a["g"])], axis=1),
        figures=(Figure("input 28x28x116\nshuffle 2", 0, 0, (28, 28, 116),
                        "a permutation of the channels: no weights, no MACs, the shape kept"),),
        volume=Draw(lambda g, shape, mode: None if mode == "down" else (
            f"shuffle {g.pick(_divisors(shape[2]))}", shape)),
    ),
    "adaptivepool": Kind(
        cases=("input 13x13x3\nadaptivepool 6", "input 12x8x2\nadaptivepool 6x4", "input 5x7x2\nadaptivepool 3",
               "input 2x2x2\nadaptivepool 7", "input 4x4x2\nadaptivepool 4"),
        reference=lambda ly: _adaptive_avg(ly.x, *ly.a["out"]),
        figures=(Figure("input 13x13x256\nadaptivepool 6", 0, 0, (6, 6, 256),
                        "torchvision AlexNet's AdaptiveAvgPool2d((6, 6)) on 13x13x256 (a 416x416 input): 6x6x256, "
                        "no weights, pooling counts no MACs"),),
        volume=Draw(lambda g, shape, mode: None if mode != "any" else _gen_adaptivepool(g, shape)),
    ),
    "affine": Kind(
        cases=("input 4x5x3\naffine scale=[0.458, 0.448, 0.45] shift=[-0.03, -0.088, -0.188]",
               "input 1x2x3\nflatten\naffine scale=[2] shift=[-1, 0, 1, 2, 3, 4]"),
        # x * scale + shift per channel; one number stands for every channel
        reference=lambda ly: ly.x * per_channel(np.resize(ly.a["scale"], ly.x.shape[1]), ly.x)
        + per_channel(np.resize(ly.a["shift"], ly.x.shape[1]), ly.x),
        figures=(Figure("input 224x224x3\naffine scale=[0.458, 0.448, 0.45] shift=[-0.03, -0.088, -0.188]", 0, 0,
                        (224, 224, 3), "torchvision's transform_input: fixed numbers written in the spec, so no "
                        "parameters; a rescaling, so no MACs counted (as batch norm's are not)"),),
        volume=Draw(lambda g, shape, mode: None if mode == "down" else (
            f"affine scale=[{', '.join(str(g.pick((0.5, 2, -1))) for _ in range(g.pick((1, shape[2]))))}] "
            f"shift=[{', '.join(['0.25'] * g.pick((1, shape[2])))}]", shape)),
        vector=Draw(lambda g, shape: ("affine scale=[0.5] shift=[1]", shape)),
    ),
    "concat": Kind(
        cases=(
            "input 8x8x3\nconcat { conv f=1 n=2 | conv f=3 n=4 p=same | pool f=3 s=1 p=same }",
            "input 1x2x3\nflatten\nconcat { fc 3 | fc 2 | identity }",
        ),
        reference=lambda ly: np.concatenate(ly.xs, axis=1),
        figures=(Figure("input 8x8x3\nconcat { conv f=1 n=2 | conv f=3 n=4 p=same | pool f=3 s=1 p=same }",
                        120, 7_296, (8, 8, 9),
                        "an Inception-like module on 8x8x3: 1x1 conv (3 + 1) * 2 = 8 parameters, 3 * 64 * 2 = 384 "
                        "MACs; 3x3 conv (27 + 1) * 4 = 112, 27 * 64 * 4 = 6,912; the pool none; 2 + 4 + 3 = 9 "
                        "channels; concat adds nothing"),),
        merge=Merge(_concat_shape, equal=False),
    ),
    "add": Kind(
        cases=(
            "input 6x6x4\nadd { identity | conv f=3 n=4 p=same | conv f=1 n=4 }",
            "input 6x6x4\nresidual { conv f=3 n=4 p=same act=relu -> conv f=3 n=4 p=same }\nrelu",
            "input 8x8x4\nresidual {\n  conv f=3 s=2 n=8 p=1 bn=true act=relu -> conv f=3 n=8 p=same\n"
            "  shortcut { conv f=1 s=2 n=8 bn=true }\n}\nrelu",
        ),
        reference=lambda ly: sum(ly.xs),
        figures=(Figure("input 6x6x4\nadd { identity | conv f=3 n=4 p=same }", 148, 5_184, (6, 6, 4),
                        "a residual: the conv has (3*3*4 + 1) * 4 = 148 parameters and 36 * 6*6 * 4 = 5,184 MACs; "
                        "the sum adds none (its additions are not MACs)"),),
        merge=Merge(_largest, equal=True),
    ),
    "mul": Kind(
        cases=(
            "input 6x6x8\nx = conv f=3 n=8 p=same\n"
            "gate = x -> gap -> conv f=1 n=2 act=relu -> conv f=1 n=8 act=sigmoid\n"
            "gate2 = x -> gap -> conv f=1 n=8 act=hardsigmoid\nmul(gate, gate2, x)\n",
            "input 5x5x3\nmul { identity | conv f=3 n=3 p=same act=sigmoid }",
        ),
        reference=lambda ly: math.prod(ly.xs),
        figures=(Figure("input 5x5x3\nmul { identity | gap -> conv f=1 n=3 act=sigmoid }", 12, 9, (5, 5, 3),
                        "a squeeze-and-excitation gate: the 1x1 conv on 1x1x3 has (3 + 1) * 3 = 12 parameters and "
                        "3 * 3 = 9 MACs; the 1x1x3 gate scales the 5x5x3 input, which keeps its shape"),),
        merge=Merge(_largest, equal=True, gates=True),
    ),
    "pad": Kind(
        cases=("input 3x4x2\npad 1", "input 3x4x2\npad p=1x2", "input 4x4x2\npad bottom=1 right=1 -> conv f=3 s=2 n=2",
               "input 3x3x1\npad 2 top=0 left=1"),
        # zero rows above and below, zero columns left and right; every side from p unless named
        reference=lambda ly: np.pad(ly.x, ((0, 0), (0, 0), (_side(ly.a, "top", 0), _side(ly.a, "bottom", 0)),
                                           (_side(ly.a, "left", 1), _side(ly.a, "right", 1)))),
        figures=(Figure("input 96x96x3\npad bottom=1 right=1", 0, 0, (97, 97, 3),
                        "Keras' ZeroPadding2D(((0, 1), (0, 1))): one row below and one column on the right, "
                        "96 + 1 = 97; zeros have no parameters and cost no MACs"),
                 Figure("input 32x32x16\npad 2", 0, 0, (36, 36, 16), "two rows and columns each side: 32 + 4")),
        volume=Draw(lambda g, shape, mode: None if mode != "any" or max(shape[:2]) > 12 else _gen_pad(g, shape)),
    ),
    "upsample": Kind(
        cases=("input 3x4x2\nupsample 2", "input 3x4x2\nupsample 3 mode=bilinear"),
        reference=lambda ly: (ly.x.repeat(ly.a["scale"], axis=2).repeat(ly.a["scale"], axis=3)
                              if ly.a["mode"] == "nearest" else resize_bilinear(ly.x, ly.a["scale"])),
        figures=(Figure("input 8x8x4\nupsample 2", 0, 0, (16, 16, 4), "each pixel becomes 2x2: 16x16, 4 channels"),),
        volume=Draw(_gen_upsample),
    ),
}


# --- activations --------------------------------------------------------------------------------------------

ACTIVATION_SHARE = 0.1  # the activations together are drawn about as often as one other kind


def _gen_activation(name: str):
    def text(g):
        g.features.add("act")
        return f"{name} alpha=0.2" if name == "leakyrelu" and g.coin() else name

    return Draw(_unchanged(text), ACTIVATION_SHARE), Draw(lambda g, shape: (text(g), shape), ACTIVATION_SHARE)


def activation(name: str, formula: Callable[[np.ndarray, dict], np.ndarray],
               points: tuple[tuple[float, ...], tuple[float, ...]], cases: tuple[str, ...] = ()) -> None:
    """Register the test data of an activation kind: `formula(x, attrs)`, hand-checked `points`.

    Its cases are, unless given, the activation as a layer after a conv, as `act=` on fc and on conv.
    """
    volume, vector = _gen_activation(name)
    KINDS[name] = Kind(
        cases=cases or (f"input 5x5x3\nconv f=3 n=4 -> {name}", f"input 1x2x3\nflatten\nfc 4 act={name}",
                        f"input 5x5x3\nconv f=1 n=2 act={name}"),
        reference=lambda ly: formula(ly.x, ly.a),
        figures=(Figure(f"input 5x5x3\n{name}", 0, 0, (5, 5, 3), "element-wise: shape unchanged, nothing learned, "
                                                                    "no MACs counted"),),
        volume=volume, vector=vector, points=points,
    )


activation("relu", lambda x, a: np.maximum(x, 0), ((-2, 0, 3), (0, 0, 3)))
activation("relu6", lambda x, a: np.clip(x, 0, 6), ((-1, 3, 7), (0, 3, 6)))
activation("sigmoid", lambda x, a: 1 / (1 + np.exp(-x)),
           ((0, math.log(3), -math.log(3)), (0.5, 0.75, 0.25)))  # 1 / (1 + 1/3) = 3/4
activation("tanh", lambda x, a: np.tanh(x), ((0, math.log(2)), (0, 0.6)))  # (2 - 1/2) / (2 + 1/2) = 3/5
activation("leakyrelu", lambda x, a: np.where(x > 0, x, a.get("alpha", 0.01) * x),
           ((-2, 0, 3), (-0.02, 0, 3)))  # the default slope 0.01
activation("elu", lambda x, a: np.where(x > 0, x, np.exp(x) - 1), ((-math.log(2), 2), (-0.5, 2)))  # 1/2 - 1
activation("silu", lambda x, a: x / (1 + np.exp(-x)), ((0, math.log(3)), (0, 0.75 * math.log(3))))
activation("hardswish", lambda x, a: x * np.clip(x + 3, 0, 6) / 6,
           ((-4, -3, 1, 3, 5), (0, 0, 4 / 6, 3, 5)))  # 1 * (1 + 3) / 6
activation("hardsigmoid", lambda x, a: np.clip(x + 3, 0, 6) / 6, ((-4, 0, 1.5, 4), (0, 0.5, 0.75, 1)))
activation("gelu", lambda x, a: gelu(x), ((0, 1, -1), (0, 0.8413447, -0.1586553)))  # x * Phi(x), Phi(1) = 0.8413447
activation("softmax", lambda x, a: softmax(x),
           ((0, math.log(3)), (0.25, 0.75)),  # e^0 : e^ln3 = 1 : 3
           cases=("input 4x4x3\nsoftmax", "input 1x2x5\nflatten\nsoftmax", "input 6x6x2\nconv f=3 n=4 act=softmax"))
