"""Random cnndsl specs for the property and fuzz tests: valid by construction (every shape is tracked
while generating, with the notes' formulas written out again here), and near misses that break one layer.

`valid_specs()` draws a `Generated` (the text, the expected output shapes); `near_misses()` draws a
`NearMiss` (the text and where the offending layer is). One layer of a given kind, and its output shape, is
drawn by that kind's snippet in tests/kinds.py; this module draws the structure around the layers. The
budget of both campaigns is `examples()`:
a few hundred cases in the normal run, many more with CNNDSL_FULL=1 (`./dev test-full`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from kinds import KINDS

from cnndsl.layers import ACTIVATIONS

FULL = os.environ.get("CNNDSL_FULL", "") not in ("", "0")
MAX_HW = 20  # spatial sizes stay small so that onnxruntime runs every case in milliseconds
MAX_C = 12
ACTS = tuple(a for a in ACTIVATIONS if a != "none")  # what `act=` takes
MERGES = tuple(k for k, d in KINDS.items() if d.merge)


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

    MAX_C = MAX_C

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

    def weighted(self, shares: dict[str, float]) -> str:
        """One of the keys, each drawn in proportion to its share (in tenths)."""
        tenths = {k: max(1, round(10 * v)) for k, v in shares.items()}
        k = self.i(0, sum(tenths.values()) - 1)
        for name, t in tenths.items():
            if k < t:
                return name
            k -= t
        raise AssertionError("unreachable")

    def num(self, v: int, simple: bool = False) -> str:
        """`v` as a literal, or as arithmetic on a block parameter that equals it (`simple`: a bare name)."""
        for name, pv in self.params.items():
            forms = [(pv, name)] if simple else [(pv, name), (2 * pv, f"{name}*2"), (pv + 1, f"{name}+1"),
                                                 (pv - 1, f"{name} - 1"), (pv, f"({name})"), (pv, f"max({name}, 1)"),
                                                 (pv // 2, f"{name} // 2"), (pv, f"{name} * 2 // 2")]
            for value, text in forms:
                if value == v and self.coin():
                    self.features.add("block-arithmetic")
                    return text
        if not simple and self.coin() and self.coin():
            self.features.add("arithmetic")
            return self.pick((f"{2 * v} // 2", f"min({v}, {v + 3})", f"({v} if {v} > 0 else 1)", f"{v + 7} - 7 % 8",
                              f"round({v}.4)", f"ceil({v} - 0.5)", f"int({v}.9)", f"max([{v}, 1])"))
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
            act = self.pick(ACTS)
            if act == "leakyrelu" and self.coin():
                act = self.pick(("leakyrelu(0.2)", "leakyrelu(alpha=0.05)"))
                self.features.add("act-param")
            out += f" act={act}"
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
        """One layer on an H x W x C volume. mode: any | keep (same H x W) | down (ceil(H/2) x ceil(W/2)).

        The kind is drawn by its share; its snippet (tests/kinds.py) writes the layer and its output shape,
        or declines a mode it cannot serve (a `bn` cannot halve H x W), and another kind is drawn.
        """
        shares = {k: d.volume.share for k, d in KINDS.items() if d.volume}
        while True:
            kind = self.weighted(shares)
            made = KINDS[kind].volume.snippet(self, shape, mode)
            if made is not None:
                self.features.add(kind)
                return made
            del shares[kind]

    def layer1(self, shape: Shape) -> tuple[str, Shape]:
        """One layer on a vector, drawn as `layer3` draws one on a volume."""
        kind = self.weighted({k: d.vector.share for k, d in KINDS.items() if d.vector})
        self.features.add(kind)
        return KINDS[kind].vector.snippet(self, shape)

    # --- elements and chains -----------------------------------------------------------------------

    def element(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        """A layer or (with depth left) a construct: branches, residual, repeat, block call."""
        choices = ["layer"] * 4
        if depth > 0:
            choices += ["branches", "residual", "repeat", "block", "loop", "cond"]
        what = self.pick(choices)
        if what == "layer":
            if len(shape) == 1:
                return self.layer1(shape)
            if len(shape) == 3 and mode != "down" and self.coin() and self.coin():
                self.features.add("shape-function")
                c = shape[2]
                options = [("conv f=1 n=channels()", shape),
                           ("conv f=1 n=max(1, channels() // 2)", (*shape[:2], max(1, c // 2)))]
                if mode == "any":
                    options.append(("pool f=height() s=1", (1, shape[1] - shape[0] + 1, c)) if shape[1] >= shape[0]
                                   else ("pool f=width() s=1", (shape[0] - shape[1] + 1, 1, c)))
                return self.pick(options)
            return self.layer3(shape, mode)
        self.features.add(what)
        return getattr(self, what)(shape, mode, depth - 1)

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
    def branches(self, shape: Shape, mode: str, depth: int, merge: str | None = None) -> tuple[str, Shape]:
        """`merge { a | b | ... }` with a merge kind drawn from tests/kinds.py (or the given one)."""
        merge = merge or self.pick(MERGES)
        how = KINDS[merge].merge
        width = self.i(2, 3)
        bmode = "down" if mode == "down" or (mode == "any" and self.coin() and self.coin()) else "keep"
        if len(shape) == 1:
            bmode = "keep"
        texts, shapes = [], []
        k = self.i(1, MAX_C) if len(shape) == 3 else self.i(1, 10)
        for b in range(width):
            if how.gates and b > 0 and len(shape) == 3 and self.coin():
                texts.append(f"gap -> conv f=1 n={k} act=sigmoid")  # a squeeze-and-excite gate
                shapes.append((1, 1, k))
                self.features.add("mul-gate")
                continue
            text, out = self.chain(shape, bmode, depth)
            if how.equal:
                text, out = self.fit_channels(text, out, k)
            texts.append(text)
            shapes.append(out)
        if len(shape) == 3 and len({s[:2] for s in shapes if s[:2] != (1, 1) or not how.gates}) > 1:
            raise AssertionError(f"generator bug: branch shapes {shapes}")
        out = how.shape(shapes)
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
            if self.coin():  # a shortcut chosen by the input's shape: not taken here
                self.features.add("if-shortcut")
                sc = f"if channels() != {shape[2]} {{ shortcut {{ conv f=1 n=1 }} }}"
                return f"residual {{\n  {text}\n  {sc}\n}}", out
            return f"residual {{\n  {text}\n}}", out
        down = mode == "down" or (mode == "any" and self.coin())
        k = self.i(1, MAX_C)
        text, out = self.chain(shape, "down" if down else "keep", depth)
        text, out = self.fit_channels(text, out, k)
        sc = f"conv f=1 s=2 n={k}" if down else f"conv f=1 n={k}"
        sc += self.pick(("", " -> bn", " bias=false"))
        self.features.add("projection")
        if self.coin():  # the same projection, chosen by a condition on the input that holds
            self.features.add("if-shortcut")
            cond = self.pick((f"height() == {shape[0]}", f"channels() != {shape[2]} or true", f"width() >= {shape[1]}"))
            return f"residual {{\n  {text}\n  if {cond} {{ shortcut {{ {sc} }} }} else {{ }}\n}}", out
        return f"residual {{\n  {text}\n  shortcut {{ {sc} }}\n}}", out

    def repeat(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        n = self.pick((1, 2, 3))  # `repeat 0` can hand a merge the same value twice: see the fuzz corpus
        text, _ = self.body_same(shape, depth)
        if mode == "down":  # the repeat itself keeps the shape, so the halving goes after it
            step, shape = self.layer3(shape, "down")
            return f"repeat {n} {{ {text} }} -> {step}", shape
        return self.pick((f"repeat {n} {{ {text} }}", f"repeat {n} {{\n  {text}\n}}")), shape

    def loop(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        """`for` over a table (written in place or as a top-level `let`), or over `range(n)`."""
        if len(shape) == 1:
            sizes = [self.i(1, 10) for _ in range(self.i(1, 3))]
            return f"for n in [{', '.join(map(str, sizes))}] {{ fc n }}", (sizes[-1],)
        if self.coin():
            text, _ = self.body_same(shape, depth)
            n = self.i(0, 2)
            out_text = f"for i in range({n}) {{ {text} }}"
        else:
            rows = [(self.pick((1, 3)), self.i(1, MAX_C)) for _ in range(self.i(1, 3))]
            table = "[" + ", ".join(f"({k}, {c})" for k, c in rows) + "]"
            if self.coin():
                name = f"t{len(self.blocks)}"
                self.blocks.append(f"let {name} = {table}")
                table = name
                self.features.add("let")
            out_text = f"for (k, c) in {table} {{ conv f=k p=same n=c }}"
            shape = (*shape[:2], rows[-1][1])
        if mode == "down":
            step, shape = self.layer3(shape, "down")
            return f"{out_text} -> {step}", shape
        return out_text, shape

    def cond(self, shape: Shape, mode: str, depth: int) -> tuple[str, Shape]:
        """`if`/`else` on the input's shape: the arm drawn here is the one whose condition holds."""
        text, out = self.chain(shape, mode, depth)
        other, _ = self.chain(shape, mode, 0)
        if len(shape) == 1:
            holds, fails = "len(shape()) == 1", f"shape() == [{shape[0] + 1}]"
        else:
            holds = self.pick((f"channels() == {shape[2]}", f"height() * width() == {shape[0] * shape[1]}",
                               f"shape() == [{shape[0]}, {shape[1]}, {shape[2]}] and true"))
            fails = self.pick((f"channels() != {shape[2]}", f"not height() == {shape[0]}", "false"))
        if self.coin():
            return f"if {holds} {{ {text} }} else {{ {other} }}", out
        return f"if {fails} {{ {other} }} elif {holds} {{ {text} }}", out

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
            merge = draw(st.sampled_from(MERGES))
            if KINDS[merge].merge.equal:
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
                    if KINDS[merge].merge.equal:
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
                    if KINDS[merge].merge.equal:
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
    how = KINDS[merge].merge
    assert not how.equal or len(set(shapes)) == 1, shapes
    return how.shape(shapes)


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
