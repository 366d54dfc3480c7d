"""Receptive field, effective stride and effective padding of every layer, per axis, on any DAG.

A pure pass over the checked graph (after shape inference). For each layer's output, along each axis:

- `size`: how many input pixels one output pixel sees (its receptive field);
- `stride`: how far apart, in input pixels, the fields of two neighbouring output pixels are;
- `padding`: how far the field of the first output pixel reaches before the input's first pixel.

The recurrences are the usual ones (Araujo et al., "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019; the TF-slim receptive_field library): a window of f (dilated to d(f - 1) + 1),
stride s and leading padding p maps (size r, stride j, start l) to (r + (f_eff - 1)j, js, l - pj). At a
merge the field is the union of the branches' fields (the largest one when their centres agree), and
branches that disagree on stride or on the centre of their fields get a `rf-misaligned` warning. A 1x1xC
gate of `mul` (squeeze-and-excitation) is global context and does not move the field. `deconv` and
`upsample` give output pixels fields that depend on their position, so no single size/stride/padding
describes them: they and the layers after them have no field (declined, with the reason).
"""

from __future__ import annotations

from typing import NamedTuple

from ..diagnostics import Diagnostic, Note, warning
from ..graph import LayerGraph
from ..layers import LAYERS, pad_sides, resolve_pads
from ..records import record
from . import inputs

DECLINED = {
    "deconv": "a transposed convolution gives its output pixels fields that depend on their position "
              "(one input pixel spreads over f/s outputs), so no single size, stride and padding describes it",
    "upsample": "upsampling gives s neighbouring output pixels the same field (a fractional stride), so no "
                "single size, stride and padding describes it",
}


class Field(NamedTuple):
    """The receptive field of a layer's output, per axis (height, width), in input pixels (a NamedTuple:
    one is made per layer, and ResNet-152 has a thousand)."""

    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[int, int]  # input coordinate of the first pixel seen by output pixel (0, 0); <= 0

    @property
    def padding(self) -> tuple[int, int]:
        return (-self.start[0], -self.start[1])

    def centre2(self, axis: int) -> int:
        """Twice the centre of output pixel 0's field (an integer even for even sizes)."""
        return 2 * self.start[axis] + self.size[axis] - 1

    def to_dict(self) -> dict:
        return {"size": list(self.size), "stride": list(self.stride), "padding": list(self.padding)}

    def text(self) -> str:
        """`212` for a square field, `7x1` otherwise (the summary's column)."""
        return str(self.size[0]) if self.size[0] == self.size[1] else f"{self.size[0]}x{self.size[1]}"


@record(frozen=False)
class Fields:
    """The pass's result: a field per layer (None where it does not apply), why some were declined, the
    first layer whose field covers the whole input, and the warnings."""

    fields: dict[str, Field | None]
    declined: dict[str, str]
    covers: str | None
    diagnostics: list[Diagnostic]


ORIGIN = Field((1, 1), (1, 1), (0, 0))


def _window(fi: Field, f: tuple[int, int], s: tuple[int, int], lead: tuple[int, int]) -> Field:
    (r0, r1), (j0, j1), (l0, l1) = fi
    return Field((r0 + (f[0] - 1) * j0, r1 + (f[1] - 1) * j1), (j0 * s[0], j1 * s[1]),
                 (l0 - lead[0] * j0, l1 - lead[1] * j1))


def _centre(f: Field) -> str:
    return ", ".join(f"{f.centre2(k) / 2:g}" for k in (0, 1))


def receptive_fields(g: LayerGraph, shapes: dict[str, tuple[int, ...]]) -> Fields:
    """The field of every layer with a known shape, in node order."""
    fields: dict[str, Field | None] = {}
    declined: dict[str, str] = {}
    root: dict[str, str] = {}  # a declined layer -> the layer where the field was first declined
    diags: list[Diagnostic] = []
    inp = g.graph["input"]
    in_shape = shapes.get(inp, ())
    covers = None
    ins_of = inputs(g)
    for n, d in g.nodes(data=True):
        out = shapes.get(n)
        if out is None:
            continue
        op, a = d["op"], d["attrs"]
        if op == "input":
            fields[n] = ORIGIN if len(out) == 3 else None
            continue
        srcs = ins_of[n]
        if declined:
            gone = [s for s in srcs if s in declined]
            if gone:
                root[n] = r = root[gone[0]]
                declined[n] = f"it follows `{r}`: {declined[r]}"
                fields[n] = None
                continue
        ins = [fields.get(s) for s in srcs]
        if None in ins:
            fields[n] = None  # a vector network: no spatial axes
            continue
        x = shapes[srcs[0]]
        kind = LAYERS[op]
        if kind.is_merge:
            fields[n] = _merge(g, n, srcs, [shapes[s] for s in srcs], ins, out, diags)  # type: ignore[arg-type]
        elif op in DECLINED:
            declined[n], root[n] = DECLINED[op], n
            fields[n] = None
        elif len(x) != 3:
            fields[n] = ins[0]  # a vector layer sees what its input saw
        elif "f" in a and "s" in a and isinstance(a["f"], tuple):
            pads = resolve_pads(x[0], x[1], a)
            dil = a.get("d") or (1, 1)
            eff = tuple(dil[k] * (a["f"][k] - 1) + 1 for k in (0, 1))
            fields[n] = _window(ins[0], eff, a["s"], (pads[0], pads[1]))  # type: ignore[arg-type]
        elif op == "pad":  # a 1x1 window, stride 1, after `top` rows and `left` columns of zeros
            fields[n] = _window(ins[0], (1, 1), (1, 1), pad_sides(a)[:2])  # type: ignore[arg-type]
        elif len(out) == 1 or (out[:2] == (1, 1) and x[:2] != (1, 1)):
            fields[n] = _window(ins[0], x[:2], x[:2], (0, 0))  # gap, fc, flatten: one window over everything
        elif out[:2] == x[:2]:
            fields[n] = ins[0]  # pointwise: activations, batch norm, dropout, ...
        else:
            declined[n], root[n] = f"cnndsl does not know how `{op}` maps positions", n
            fields[n] = None
        f = fields[n]
        if covers is None and f is not None and len(in_shape) == 3 and f.size[0] >= in_shape[0] \
                and f.size[1] >= in_shape[1]:
            covers = n
    return Fields(fields, declined, covers, diags)


def _merge(g: LayerGraph, n: str, srcs: list[str], shapes: list, ins: list[Field], out, diags) -> Field:
    # a 1x1xC gate of `mul` (squeeze-and-excitation) scales every position alike: global context
    spatial = [i for i, sh in enumerate(shapes) if len(sh) != 3 or sh[:2] != (1, 1) or out[:2] == (1, 1)]
    spatial = spatial or list(range(len(ins)))
    first = spatial[0]
    for i in spatial[1:]:
        a, b = ins[first], ins[i]
        if a.stride != b.stride or any(a.centre2(k) != b.centre2(k) for k in (0, 1)):
            what = "effective stride" if a.stride != b.stride else "the centre of their receptive fields"
            d = g.nodes[n]
            diags.append(warning(
                "rf-misaligned",
                f"the inputs of `{n}` ({LAYERS[d['op']].name}) disagree on {what}: `{srcs[first]}` and `{srcs[i]}` "
                "see different places of the input at the same output pixel",
                d["span"],
                notes=[Note(f"`{srcs[j]}`: field {ins[j].size[0]}x{ins[j].size[1]}, stride "
                            f"{ins[j].stride[0]}x{ins[j].stride[1]}, centred at ({_centre(ins[j])})",
                            g.nodes[srcs[j]]["span"]) for j in (first, i)],
                help="pad the branches alike so that their windows stay centred (`p=same`, or p = (f - 1)/2 for "
                     "odd f) and give them the same total stride",
            ))
            break
    chosen = [ins[i] for i in spatial]
    start = tuple(min(f.start[k] for f in chosen) for k in (0, 1))
    end = tuple(max(f.start[k] + f.size[k] for f in chosen) for k in (0, 1))
    return Field(
        size=(end[0] - start[0], end[1] - start[1]),
        stride=tuple(max(f.stride[k] for f in chosen) for k in (0, 1)),  # type: ignore[arg-type]
        start=start,  # type: ignore[arg-type]
    )
