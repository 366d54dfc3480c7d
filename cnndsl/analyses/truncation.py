"""Floor truncation: input rows and columns that no window of a conv or pool ever reads.

A pure pass over the checked graph. The notes' output size floor((n + 2p - f)/s) + 1 drops the
remainder of (n + 2p - f)/s: the last r rows of the padded input are never read. When some of them are
real input rows (not padding), the layer gets a `floor-truncation` warning saying how many pixels are
lost and the smallest change that avoids it.

Policy: a layer whose window is smaller than its stride (a 1x1 conv with s=2, ResNet's projection
shortcut) skips rows everywhere by design, so its last row is no more lost than the others: no warning.
Ceil-mode pooling reads the remainder, so it is never truncated. Everything else warns, zoo included (no
spec in the zoo drops a pixel; the references were built so that the sizes fit, e.g. AlexNet's 227 -> 55
and torchvision's p=2 at 224).
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Note, warning
from ..graph import LayerGraph
from ..layers import LAYERS, resolve_pads
from ..records import record
from . import inputs

WINDOWED = {"conv", "dwconv", "sepconv", "pool"}


@record
class Lost:
    """Pixels dropped along one axis: `rows` real input rows (or columns) after the last window."""

    axis: int  # 0 height, 1 width
    n: int
    f: int  # the window, dilated
    s: int
    p0: int
    p1: int
    rows: int

    def fits(self) -> tuple[int, int]:
        """The nearest input sizes that fit exactly: smaller (cropped) and larger."""
        rem = (self.n + self.p0 + self.p1 - self.f) % self.s
        return self.n - rem, self.n + self.s - rem


def lost_pixels(n: int, f: int, s: int, p0: int, p1: int) -> int:
    """Real input rows after the last window along one axis (0 when the remainder is all padding)."""
    if f < s:
        return 0  # strided subsampling skips rows everywhere, on purpose
    rem = (n + p0 + p1 - f) % s
    return max(rem - p1, 0)


def truncations(g: LayerGraph, shapes: dict[str, tuple[int, ...]]) -> dict[str, list[Lost]]:
    """Layers that drop input pixels, with what each axis loses."""
    out: dict[str, list[Lost]] = {}
    ins_of = inputs(g)
    for n, d in g.nodes(data=True):
        if d["op"] not in WINDOWED or n not in shapes:
            continue
        a = d["attrs"]
        if a.get("ceil"):
            continue
        x = shapes[ins_of[n][0]]
        pads = resolve_pads(x[0], x[1], a)
        dil = a.get("d") or (1, 1)
        lost = []
        for k in (0, 1):
            eff = dil[k] * (a["f"][k] - 1) + 1
            rows = lost_pixels(x[k], eff, a["s"][k], pads[k], pads[k + 2])
            if rows:
                lost.append(Lost(k, x[k], eff, a["s"][k], pads[k], pads[k + 2], rows))
        if lost:
            out[n] = lost
    return out


def _plural(k: int, word: str) -> str:
    return word if k == 1 else f"{k} {word}s"


def diagnostics(g: LayerGraph, shapes: dict[str, tuple[int, ...]]) -> list[Diagnostic]:
    """One `floor-truncation` warning per layer that drops pixels."""
    diags = []
    for n, lost in truncations(g, shapes).items():
        d = g.nodes[n]
        x = shapes[inputs(g)[n][0]]
        what = " and the last ".join(_plural(lo.rows, "row" if lo.axis == 0 else "column") for lo in lost)
        sums = "; ".join(
            f"{'height' if lo.axis == 0 else 'width'}: ({lo.n} + {lo.p0 + lo.p1} - {lo.f}) / {lo.s} = "
            f"{(lo.n + lo.p0 + lo.p1 - lo.f) // lo.s} remainder {(lo.n + lo.p0 + lo.p1 - lo.f) % lo.s}"
            for lo in lost)
        small = "x".join(str(next((lo.fits()[0] for lo in lost if lo.axis == k), x[k])) for k in (0, 1))
        large = "x".join(str(next((lo.fits()[1] for lo in lost if lo.axis == k), x[k])) for k in (0, 1))
        diags.append(warning(
            "floor-truncation",
            f"`{n}` ({LAYERS[d['op']].label(d['attrs'])}) never reads the last {what} of its "
            f"{'x'.join(map(str, x))} input: the floor in floor((n + 2p - f)/s) + 1 drops them",
            d["span"],
            notes=[Note(sums)],
            help=f"an input of {small} or {large} to this layer fits exactly"
                 + (f"; or `p={_pad_fix(lost, d['attrs'])}`" if _pad_fix(lost, d["attrs"]) else ""),
        ))
    return diags


def _pad_fix(lost: list[Lost], a: dict) -> str | None:
    """The smallest symmetric padding, at least the current one, that fits every truncated axis."""
    if a["p"] == "same" or a["p"][0] != a["p"][2] or a["p"][1] != a["p"][3]:
        return None
    want = [a["p"][0], a["p"][1]]
    for lo in lost:
        p = lo.p0
        while (lo.n + 2 * p - lo.f) % lo.s and p < lo.p0 + lo.s:
            p += 1
        if (lo.n + 2 * p - lo.f) % lo.s:
            return None
        if a.get("mode") is not None and p >= lo.f:
            return None  # pool padding must stay smaller than the window
        want[lo.axis] = p
    return str(want[0]) if want[0] == want[1] else f"{want[0]}x{want[1]}"
