"""Random cnndsl specs for the property and fuzz tests: valid by construction (every shape is tracked
while generating, with the notes' formulas written out again here), and near misses that break one layer.

`valid_specs()` draws a `Generated` (the text, the expected output shapes); `near_misses()` draws a
`NearMiss` (the text and where the offending layer is). The budget of both campaigns is `examples()`:
a few hundred cases in the normal run, many more with CNNDSL_FULL=1 (`./dev test-full`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FULL = os.environ.get("CNNDSL_FULL", "") not in ("", "0")
MAX_HW = 20  # spatial sizes stay small so that onnxruntime runs every case in milliseconds
MAX_C = 12
ACTS = ("relu", "relu6", "sigmoid", "tanh", "leakyrelu", "elu", "silu", "hardswish", "hardsigmoid", "gelu", "softmax")


def examples(normal: int, full: int, **kw) -> settings:
    """Hypothesis settings: `normal` cases (derandomized, so a normal run is reproducible) or `full` ones."""
    return settings(
        max_examples=full if FULL else normal, derandomize=not FULL, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much], **kw,
    )


# --- the notes' formulas, written independently of cnndsl.layers -----------------------------------


def window(n: int, f: int, s: int, p0: int, p1: int, d: int = 1, ceil: bool = False) -> int:
    """floor((n + p0 + p1 - d(f-1) - 1) / s) + 1; PyTorch's ceil mode drops a window starting in the right pad."""
    span = n + p0 + p1 - (d * (f - 1) + 1)
    assert span >= 0, (n, f, s, p0, p1, d)
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    return out - 1 if (out - 1) * s >= n + p0 else out


def sz(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}x{b}"


Shape = tuple


@dataclass
class Generated:
    text: str
    outputs: list[Shape]  # expected output shapes, H x W x C or (n,), in `output` order
    features: set[str] = field(default_factory=set)  # which constructs the spec uses (for statistics)


class Gen:
    """Draws one spec. Methods take the current shape and return (text, new shape)."""

    def __init__(self, draw, depth: int = 2):
        self.draw = draw
        self.depth = depth
        self.blocks: list[str] = []
        self.params: dict[str, int] = {}  # the block parameters in scope while a block body is drawn
        self.features: set[str] = set()
        self.nblocks = 0

    # drawing helpers
    def i(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, max(lo, hi)))

    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def coin(self) -> bool:
        return self.draw(st.booleans())

    def num(self, v: int, simple: bool = False) -> str:
        """`v` as a literal, or as arithmetic on a block parameter that equals it (`simple`: a bare name)."""
        for name, pv in self.params.items():
            forms = [(pv, name)] if simple else [(pv, name), (2 * pv, f"{name}*2"), (pv + 1, f"{name}+1"),
                                                 (pv - 1, f"{name} - 1"), (pv, f"({name})")]
            for value, text in forms:
                if value == v and self.coin():
                    self.features.add("block-arithmetic")
                    return text
        return str(v)

    def post(self, allow_act: bool = True) -> str:
        """Optional `bias=`, `bn=`, `act=` of conv-like layers."""
        out = ""
        if self.coin():
            out += " bias=false"
        if self.coin():
            out += " bn=true"
            self.features.add("bn")
        if allow_act and self.coin():
            out += f" act={self.pick(ACTS)}"
        return out

    # --- single layers on a volume ---------------------------------------------------------------

    def window_args(self, h: int, w: int, mode: str, dilate: bool, pool: bool = False):
        """(text, out_h, out_w) for the f/s/p/d of a window layer. mode: any | keep (same HxW) | down."""
        fh = self.i(1, 4)
        fw = fh if self.coin() else self.i(1, 4)
        d = self.pick((1, 1, 2, 3)) if dilate else 1
        if mode in ("keep", "down"):
            s = 1 if mode == "keep" else 2
            if pool and mode == "keep":
                fh, fw = min(fh, 3), min(fw, 3)
            # NOTE: pool's `s` defaults to `f`, so a pool always says its stride
            text = f"f={sz(fh, fw)}" + (f" s={self.num(s)}" if s > 1 or pool or self.coin() else "") + " p=same"
            text += f" d={d}" if d > 1 else ""
            return text, -(-h // s), -(-w // s)
        sh = self.i(1, 3)
        sw = sh if self.coin() else self.i(1, 3)
        kind = self.pick(("num", "hxw", "same", "valid"))
        if kind == "same" and not pool:  # pooling `same` with ceil mode depends on the pad split: kept out
            text = f"f={sz(fh, fw)} s={sz(sh, sw)} p=same" + (f" d={d}" if d > 1 else "")
            return text, -(-h // sh), -(-w // sw)
        ph = 0 if kind == "valid" else self.i(0, 2)
        pw = ph if kind != "hxw" else self.i(0, 2)
        # shrink the window until it fits the padded input
        fh = max(1, min(fh, (h + 2 * ph - 1) // d + 1))
        fw = max(1, min(fw, (w + 2 * pw - 1) // d + 1))
        if pool:  # onnxruntime (and PyTorch) need the padding smaller than the window
            ph, pw = min(ph, fh - 1), min(pw, fw - 1)
        ceil = pool and self.coin()
        ptext = "valid" if kind == "valid" else sz(ph, pw)
        if pool and kind == "valid" and self.coin():
            ptext = "0"
        text = f"f={sz(fh, fw)} s={sz(sh, sw)} p={ptext}" + (f" d={d}" if d > 1 else "")
        text += " ceil=true" if ceil else ""
        return text, window(h, fh, sh, ph, ph, d, ceil), window(w, fw, sw, pw, pw, d, ceil)

    def layer3(self, shape: Shape, mode: str = "any") -> tuple[str, Shape]:
        """One layer on an H x W x C volume. mode: any | keep (same H x W) | down (ceil(H/2) x ceil(W/2))."""
        h, w, c = shape
        kinds = ["conv", "conv", "dwconv", "sepconv", "pool"]
        if mode == "keep":
            kinds += ["bn", "act", "act", "lrn", "dropout", "identity", "conv1", "prelu", "layernorm", "layerscale",
                      "droppath", "shuffle"]
        if mode == "any":
            kinds += ["bn", "act", "lrn", "dropout", "identity", "gap", "conv1", "prelu", "layernorm", "split",
                      "adaptivepool"]
            if h <= 10 and w <= 10:
                kinds += ["deconv", "upsample"]
        kind = self.pick(kinds)
        self.features.add(kind)
        if kind in ("conv", "conv1"):
            gs = [g for g in range(1, c + 1) if c % g == 0]
            g = self.pick(gs) if self.coin() else 1
            n = g * self.i(1, max(1, MAX_C // g))
            if kind == "conv1":  # a pointwise conv, often written positionally or in call form
                form = self.pick(("plain", "positional", "call"))
                if form == "positional":
                    return f"conv f=1 {self.num(n, simple=True)}", (h, w, n)
                if form == "call":
                    return f"conv(f=1, n={self.num(n)})", (h, w, n)
                return f"conv f=1 n={self.num(n)}", (h, w, n)
            args, ho, wo = self.window_args(h, w, mode, dilate=True)
            if self.coin() and "f=3 " in args + " " and "d=" not in args and g == 1 and n <= 4:
                self.features.add("fixed-kernel")
                args += f" w={self.pick(('vertical', 'sobel_h', 'laplacian'))}"
            gt = f" g={g}" if g > 1 else ""
            return f"conv {args} n={self.num(n)}{gt}{self.post()}", (ho, wo, n)
        if kind == "dwconv":
            m = self.i(1, 2) if c <= 6 else 1
            args, ho, wo = self.window_args(h, w, mode, dilate=True)
            return f"dwconv {args}" + (f" m={m}" if m > 1 else "") + self.post(), (ho, wo, c * m)
        if kind == "sepconv":
            n = self.i(1, MAX_C)
            args, ho, wo = self.window_args(h, w, mode, dilate=True)
            return f"sepconv {args} n={self.num(n)}{self.post()}", (ho, wo, n)
        if kind == "pool":
            mode_word = self.pick(("", "avg ", "mode=max ", "max "))
            args, ho, wo = self.window_args(h, w, mode, dilate=False, pool=True)
            return f"pool {mode_word}{args}", (ho, wo, c)
        if kind == "deconv":
            gs = [g for g in range(1, c + 1) if c % g == 0]
            g = self.pick(gs) if self.coin() else 1
            n = g * self.i(1, max(1, 8 // g))
            f, s, d = self.i(1, 4), self.i(1, 2), self.pick((1, 1, 2))
            op = self.i(0, s - 1)
            p = self.i(0, 1)
            ho = (h - 1) * s - 2 * p + d * (f - 1) + op + 1
            wo = (w - 1) * s - 2 * p + d * (f - 1) + op + 1
            if ho < 1 or wo < 1:
                p = 0
                ho, wo = (h - 1) * s + d * (f - 1) + op + 1, (w - 1) * s + d * (f - 1) + op + 1
            text = f"deconv f={f} s={s} p={p} n={n}" + (f" d={d}" if d > 1 else "") + (f" op={op}" if op else "")
            return text + (f" g={g}" if g > 1 else "") + self.post(), (ho, wo, n)
        if kind == "upsample":
            k = self.i(1, 2)
            return self.pick((f"upsample {k}", f"upsample scale={k} mode=bilinear", f"upsample {k} mode=nearest")), (
                h * k, w * k, c)
        if kind == "gap":
            return "gap", (1, 1, c)
        if kind == "split":
            k = self.pick([k for k in (1, 2, 3, 4) if c % k == 0])
            i = self.i(0, k - 1)
            return self.pick((f"split {i} of={k}", f"split(part={i}, of={k})")), (h, w, c // k)
        if kind == "adaptivepool":
            oh, ow = self.i(1, h + 2), self.i(1, w + 2)
            return self.pick((f"adaptivepool {oh}x{ow}", f"adaptivepool out={oh}x{ow}")), (oh, ow, c)
        if kind == "shuffle":
            return f"shuffle {self.pick([g for g in range(1, c + 1) if c % g == 0])}", shape
        if kind == "lrn":
            return self.pick(("lrn", f"lrn size={self.pick((1, 3, 5))} alpha=0.001 beta=0.5 k=1")), shape
        return self.same_shape_layer(kind), shape

    def same_shape_layer(self, kind: str) -> str:
        if kind == "bn":
            return self.pick(("bn", "bn eps=0.001"))
        if kind == "dropout":
            return self.pick(("dropout", "dropout 0.3", "dropout rate=0.1"))
        if kind == "identity":
            return "identity"
        if kind == "prelu":
            return self.pick(("prelu", "prelu init=0.1"))
        if kind == "layernorm":
            return self.pick(("layernorm", "layernorm eps=1e-6"))
        if kind == "layerscale":
            return self.pick(("layerscale", "layerscale init=0.5"))
        if kind == "droppath":
            return self.pick(("droppath", "droppath 0.2"))
        act = self.pick(ACTS)
        self.features.add("act")
        return "leakyrelu alpha=0.2" if act == "leakyrelu" and self.coin() else act

    def layer1(self, shape: Shape) -> tuple[str, Shape]:
        """One layer on a vector."""
        kind = self.pick(("fc", "fc", "bn", "act", "dropout", "identity", "flatten", "prelu", "layernorm",
                          "layerscale"))
        self.features.add(kind if kind != "act" else "act")
        if kind == "fc":
            n = self.i(1, 10)
            forms = (f"fc {self.num(n, simple=True)}", f"fc(n={n})", f"fc n={n} act=relu", f"fc {n} bias=false")
            return self.pick(forms), (n,)
        if kind == "flatten":
            return "flatten", shape
        return self.same_shape_layer(kind), shape

    # --- elements and chains -----------------------------------------------------------------------

    def element(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        """A layer or (with depth left) a construct: branches, residual, repeat, block call."""
        choices = ["layer"] * 4
        if depth > 0:
            choices += ["branches", "residual", "repeat", "block"]
        what = self.pick(choices)
        if what == "layer":
            if len(shape) == 1:
                return self.layer1(shape)
            if mode == "any" and self.coin() and self.coin() and self.coin():
                self.features.add("fc-on-volume")
                return self._flat_or_fc(shape, self.i(1, 10))
            return self.layer3(shape, mode)
        self.features.add(what)
        return getattr(self, what)(shape, mode, depth - 1)

    def _flat_or_fc(self, shape: Shape, n: int) -> tuple[str, Shape]:
        if self.coin():
            return f"fc {n}", (n,)
        return "flatten", (shape[0] * shape[1] * shape[2],)

    def chain(self, shape: Shape, mode: str, depth: int, length: int | None = None) -> tuple[str, Shape]:
        """`a -> b -> ...`; mode `keep` keeps H x W, `down` halves it exactly once (`any`: no constraint)."""
        n = length or self.i(1, 3)
        down_at = self.i(0, n - 1) if mode == "down" else -1
        parts = []
        for k in range(n):
            m = "down" if k == down_at else ("keep" if mode in ("keep", "down") else "any")
            if m == "down" and len(shape) == 3:
                text, shape = self.layer3(shape, "down") if self.coin() else self.element(shape, "down", depth)
            else:
                text, shape = self.element(shape, m, depth)
            parts.append(text)
        sep = self.pick((" -> ", " -> ", "\n  -> "))
        return sep.join(parts), shape

    def fit_channels(self, text: str, shape: Shape, c: int) -> tuple[str, Shape]:
        """Append a pointwise conv (or fc on a vector) when the chain does not end with `c` channels."""
        if shape[-1] == c:
            return text, shape
        if len(shape) == 1:
            return f"{text} -> fc n={self.num(c)}", (c,)
        return f"{text} -> conv f=1 n={self.num(c)}", (*shape[:2], c)

    def body_same(self, shape: Shape, depth: int) -> tuple[str, Shape]:
        """A chain that ends with exactly the input shape (residual bodies, repeats)."""
        text, out = self.chain(shape, "keep", depth)
        return self.fit_channels(text, out, shape[-1])

    # constructs
    def branches(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        merge = self.pick(("concat", "add", "mul"))
        width = self.i(2, 3)
        bmode = "down" if mode == "down" or (mode == "any" and self.coin() and self.coin()) else "keep"
        if len(shape) == 1:
            bmode = "keep"
        texts, shapes = [], []
        k = self.i(1, MAX_C) if len(shape) == 3 else self.i(1, 10)
        for b in range(width):
            if merge == "mul" and b > 0 and len(shape) == 3 and self.coin():
                texts.append(f"gap -> conv f=1 n={k} act=sigmoid")  # a squeeze-and-excite gate
                shapes.append((1, 1, k))
                self.features.add("mul-gate")
                continue
            text, out = self.chain(shape, bmode, depth)
            if merge != "concat":
                text, out = self.fit_channels(text, out, k)
            texts.append(text)
            shapes.append(out)
        if len(shape) == 3 and len({s[:2] for s in shapes if s[:2] != (1, 1) or merge != "mul"}) > 1:
            raise AssertionError(f"generator bug: branch shapes {shapes}")
        if merge == "concat":
            out = (*shapes[0][:-1], sum(s[-1] for s in shapes))
        else:
            out = max(shapes, key=lambda s: (len(s), s[0] * s[1] if len(s) == 3 else 0))
        layout = self.pick(("inline", "lines"))
        if layout == "inline" and not any("\n" in t for t in texts):
            return f"{merge} {{ " + " | ".join(texts) + " }", out
        return f"{merge} {{\n    " + "\n  | ".join(texts) + "\n}", out

    def residual(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        if len(shape) == 1:
            text, out = self.body_same(shape, depth)
            return f"residual {{ {text} }}", out
        project = mode != "keep" or self.coin()
        if not project:
            text, out = self.body_same(shape, depth)
            return f"residual {{\n  {text}\n}}", out
        down = mode == "down" or (mode == "any" and self.coin())
        k = self.i(1, MAX_C)
        text, out = self.chain(shape, "down" if down else "keep", depth)
        text, out = self.fit_channels(text, out, k)
        sc = f"conv f=1 s=2 n={k}" if down else f"conv f=1 n={k}"
        sc += self.pick(("", " -> bn", " bias=false"))
        self.features.add("projection")
        return f"residual {{\n  {text}\n  shortcut {{ {sc} }}\n}}", out

    def repeat(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        n = self.pick((1, 2, 3))  # `repeat 0` can hand a merge the same value twice: see the fuzz corpus
        text, _ = self.body_same(shape, depth)
        if mode == "down":  # the repeat itself keeps the shape, so the halving goes after it
            step, shape = self.layer3(shape, "down")
            return f"repeat {n} {{ {text} }} -> {step}", shape
        return self.pick((f"repeat {n} {{ {text} }}", f"repeat {n} {{\n  {text}\n}}")), shape

    def block(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        """Define a block with parameters whose body is drawn for this call, and call it."""
        self.nblocks += 1
        name = f"blk{self.nblocks}"
        outer = self.params
        n = self.i(1, MAX_C)
        s = 2 if mode == "down" else 1
        self.params = {"n": n, "s": s}
        try:
            if mode == "down" and len(shape) == 3:
                # the body's one halving layer uses the parameter `s`
                text, out = self.chain(shape, "keep", depth)
                fh = self.i(1, 3)
                text, out = f"{text} -> conv f={fh} s=s p=same n=n", (-(-out[0] // 2), -(-out[1] // 2), n)
            else:
                text, out = self.chain(shape, mode, depth)
        finally:
            self.params = outer
        sig = self.pick(("(n, s=1)", "(n, s)", "(s, n=1)"))
        self.blocks.append(f"block {name}{sig} {{\n  {text}\n}}")
        first, second = ("n", "s") if sig.startswith("(n") else ("s", "n")
        args = {"n": n, "s": s}
        calls = [f"{name}({args[first]}, {second}={args[second]})", f"{name} n={n} s={s}", f"{name}(s={s}, n={n})",
                 f"{name}({args[first]}, {args[second]})"]
        if "=1)" in sig and args[second] == 1:
            calls.append(f"{name}({args[first]})")
        return self.pick(calls), out


@st.composite
def valid_specs(draw, max_stmts: int = 5) -> Generated:
    """A random valid spec and the shapes of its outputs."""
    g = Gen(draw)
    vector = draw(st.integers(0, 9)) == 0
    if vector:
        shape: Shape = (draw(st.integers(1, 12)),)
        header = [f"input {shape[0]}"]
    else:
        h = draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 11, 13, 16]))
        w = h if draw(st.booleans()) else draw(st.integers(1, 16))
        shape = (h, w, draw(st.integers(1, 4)))
        header = [f"input {h}x{w}x{shape[2]}"]
    lines: list[str] = []
    values: dict[str, Shape] = {"input": shape}
    defaults = draw(st.sampled_from(["", "defaults conv bias=false", "defaults conv bn=true act=relu",
                                     "defaults fc act=relu", "defaults leakyrelu alpha=0.3"]))
    for _ in range(draw(st.integers(1, max_stmts))):
        form = draw(st.sampled_from(["chain", "chain", "named", "from-value", "merge-names", "merge-mid", "input"]))
        if form == "from-value":
            name = draw(st.sampled_from(sorted(values)))
            text, shape = g.chain(values[name], "any", g.depth)
            lines.append(f"{name} -> {text}")
        elif form == "input":
            text, shape = g.chain(values["input"], "any", g.depth)
            lines.append(f"input -> {text}")
        elif form == "merge-names" or form == "merge-mid":
            merge = draw(st.sampled_from(["concat", "add"]))
            if merge == "add":
                key = lambda s: s  # noqa: E731
            else:
                key = lambda s: s[:-1] if len(s) == 3 else "vector"  # noqa: E731
            if form == "merge-mid":
                start = shape
                text, shape = g.chain(start, "keep", g.depth)
                fits = sorted(n for n, s in values.items() if key(s) == key(shape))
                if not fits:  # name the chain's start and branch from it, so there is something to merge
                    nm = f"v{len(values)}"
                    lines.append(f"{nm} = identity")
                    values[nm] = start
                    fits = [nm]
                    text, out = g.chain(start, "keep", g.depth)
                    if merge == "add":
                        text, out = g.fit_channels(text, out, start[-1])
                    shape = out
                    fits = [n for n in fits if key(values[n]) == key(shape)]
                if fits:
                    other = draw(st.sampled_from(fits))
                    shape = _merged(merge, [shape, values[other]])
                    text = f"{text} -> {merge}({other})"
                lines.append(text)
                g.features.add("merge-mid")
            else:
                groups: dict = {}
                for n, s in values.items():
                    groups.setdefault(key(s), []).append(n)
                pool = [ns for ns in groups.values() if len(ns) >= 2]
                if not pool:  # make a partner for the current value
                    nm = f"v{len(values)}"
                    text, out = g.chain(shape, "keep", g.depth)
                    if merge == "add":
                        text, out = g.fit_channels(text, out, shape[-1])
                    lines.append(f"{nm} = {text}")
                    values[nm] = out
                    prev = f"v{len(values)}"
                    lines.append(f"{prev} = {nm} -> identity")
                    values[prev] = out
                    pool = [[nm, prev]]
                names = draw(st.sampled_from(pool))
                picked = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
                shape = _merged(merge, [values[n] for n in picked])
                lines.append(f"{merge}({', '.join(picked)})")
                g.features.add("merge-names")
        else:
            text, shape = g.chain(shape, "any", g.depth)
            if form == "named":
                nm = f"v{len(values)}"
                values[nm] = shape
                lines.append(f"{nm} = {text}")
                g.features.add("named")
            else:
                lines.append(text)
    outputs = [shape]
    named = [n for n in values if n != "input"]
    if named and draw(st.integers(0, 3)) == 0:
        extra = draw(st.sampled_from(named))
        last = lines[-1]
        if last.startswith("v") and last.split(" ", 2)[1:2] == ["="]:
            name = last.split(" ", 1)[0]
        else:
            name = "out"
            lines[-1] = f"out = {last}"
        if name != extra:
            lines.append(f"output {name}, {extra}")
            outputs = [shape, values[extra]]
            g.features.add("outputs")
    net = [f"network gen{draw(st.integers(0, 99))}"] if draw(st.booleans()) else []
    text = "\n".join(net + ([defaults] if defaults else []) + g.blocks + header + lines) + "\n"
    return Generated(text, outputs, g.features)


def _merged(merge: str, shapes: list[Shape]) -> Shape:
    if merge == "add":
        assert len(set(shapes)) == 1, shapes
        return shapes[0]
    if len(shapes[0]) == 1:
        return (sum(s[0] for s in shapes),)
    return (*shapes[0][:2], sum(s[2] for s in shapes))


# --- near misses ---------------------------------------------------------------------------------


@dataclass
class NearMiss:
    text: str
    start: tuple[int, int]  # (line, col) of the offending layer's first character
    end: tuple[int, int]  # just past its last
    codes: set[str]  # the diagnostic codes that describe the problem


@st.composite
def near_misses(draw) -> NearMiss:
    """A valid prefix, then one layer with one parameter changed so that it no longer fits, then more layers."""
    g = Gen(draw, depth=1)
    h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 6))
    lines = [f"input {h}x{w}x{c}"]
    shape: Shape = (h, w, c)
    for _ in range(draw(st.integers(0, 2))):
        text, shape = g.chain(shape, "any", 1)
        lines.append(text)
    lines = "\n".join(g.blocks + lines).split("\n")
    before, after = "", ""
    if draw(st.booleans()):  # the offending layer in the middle of a chain
        if len(shape) == 3:
            before, shape = g.layer3(shape, "keep")
        else:
            before, shape = g.layer1(shape)
        before += " -> "
    bad, codes = _breakage(draw, shape)
    if draw(st.booleans()):
        after = " -> " + draw(st.sampled_from(["relu", "identity", "dropout"]))
    line_no = len(lines) + 1
    lines.append(before + bad + after)
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["relu", "conv f=1 n=2", "fc 3", "gap"])))
    start = (line_no, len(before) + 1)
    return NearMiss("\n".join(lines) + "\n", start, (line_no, len(before) + len(bad) + 1), codes)


SHAPE, PARAM = {"shape-mismatch"}, {"bad-param"}


def _breakage(draw, shape: Shape) -> tuple[str, set[str]]:
    """One layer that cannot take `shape`, and the codes that may report it."""
    if len(shape) == 1:
        (n,) = shape
        options = [
            ("conv f=1 n=2", SHAPE), ("pool f=2", SHAPE), ("upsample 2", SHAPE), ("gap", SHAPE), ("lrn", SHAPE),
            (f"add {{ fc {n} | fc {n + 1} }}", SHAPE), (f"residual {{ fc {n + 1} }}", SHAPE),
            ("fc 0", PARAM), ("fc n=-3", PARAM), ("fc 2.5", PARAM), ("dropout 1.5", PARAM),
        ]
        return draw(st.sampled_from(options))
    h, w, c = shape
    big = max(h, w)
    p = draw(st.integers(0, 2))
    k = draw(st.integers(1, 3))
    options = [
        (f"conv f={big + 2 * p + k} p={p} n=4", SHAPE),  # kernel larger than its (padded) input
        (f"conv f=3 d={big + 2 * p} p={p} n=4", SHAPE),  # dilated past it
        (f"pool f={big + k}", SHAPE),
        (f"dwconv f={h + k}x1", SHAPE),
        (f"sepconv f=1x{w + k} n=2", SHAPE),
        (f"add {{ conv f=1 n={c} | conv f=1 n={c + k} }}", SHAPE),  # channel mismatch in add
        (f"residual {{ conv f=1 n={c + k} }}", SHAPE),  # the body changes the shape, no projection
        (f"mul {{ identity | conv f=1 n={c + k} }}", SHAPE),
        ("conv f=1 s=0 n=4", PARAM),  # stride 0
        ("conv f=1 p=-1 n=4", PARAM),  # negative padding
        ("conv f=0 n=4", PARAM),
        ("conv f=1 n=0", PARAM),
        ("pool f=2 s=0", PARAM),
        ("deconv f=2 s=1 op=1 n=2", SHAPE),  # output padding not smaller than the stride
        ("upsample 0", PARAM),
        (f"pool f={k} p={k}", SHAPE),  # padding as large as the window
        ("lrn size=4", PARAM),  # an even window has no centre
        ("conv f=3 p=same n=3 bias=maybe", PARAM),
        ("fc 4 -> conv f=1 n=2", SHAPE),  # a volume layer after a vector (reported at the conv)
    ]
    if c > 1:
        g = c + 1
        options.append((f"conv f=1 g={g} n={g}", SHAPE))  # groups that do not divide the input channels
    if h >= 2 or w >= 2:
        options.append(("concat { identity | pool f=2 s=2 ceil=true }" if min(h, w) >= 2 else
                        ("concat { identity | conv f=1 s=2 n=1 }"), SHAPE))  # H x W mismatch in concat
    text, codes = draw(st.sampled_from(options))
    return text, codes
