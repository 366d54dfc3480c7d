"""Passes over the layer graph: shape inference and cost counting.

A pass reads node attributes and returns new facts keyed by node id; it never changes the graph (the
driver in cnndsl.model is the only writer of `shape`, `params`, `macs`, ...). Shape errors become
diagnostics at the layer's span that list every input shape and where it came from.
"""

from __future__ import annotations

from .diagnostics import Diagnostic, Note, error
from .graph import LayerGraph, inputs_map
from .layers import LAYERS, Cost, Shape, ShapeError
from .util import fmt_shape

MAX_DIM = 10**30  # a dimension beyond any machine; keeps every cost an exact int that prints and fits a float


def _describe(g: LayerGraph, n: str) -> str:
    d = g.nodes[n]
    return "the input" if d["op"] == "input" else f"`{n}` ({LAYERS[d['op']].label(d['attrs'])})"


def residual_mismatch(body: Shape, src: Shape) -> ShapeError:
    """Why a `residual { }` cannot add its input to its body, and the projection that would fix it."""
    help_ = None
    if len(src) == 3 and len(body) == 3 and src[0] % body[0] == 0 and src[0] // body[0] == src[1] // body[1]:
        s = src[0] // body[0]
        proj = f"conv f=1 s={s} n={body[2]} -> bn" if s > 1 else f"conv f=1 n={body[2]} -> bn"
        help_ = f"add a projection inside the residual: `shortcut {{ {proj} }}`"
    return ShapeError(
        f"residual body changes the shape from {fmt_shape(src)} to {fmt_shape(body)}, "
        "so the input cannot be added to it",
        help=help_ or "add a `shortcut { ... }` that maps the input to the body's shape",
    )


def infer_shapes(g: LayerGraph) -> tuple[dict[str, Shape], list[Diagnostic]]:
    """Output shape of every node whose inputs are known, in node order; errors as diagnostics."""
    shapes: dict[str, Shape] = {}
    diags: list[Diagnostic] = []
    dead = g.graph["dead"]
    inputs = inputs_map(g)
    for n, d in g.nodes(data=True):
        if n in dead:
            continue
        srcs = inputs[n]
        try:
            ins = [shapes[s] for s in srcs]
        except KeyError:
            continue  # an input already failed: report each problem once
        kind = LAYERS[d["op"]]
        try:
            out = kind.infer(ins, d["attrs"])
        except ShapeError as err:
            # a residual's `add` is made by the construct: the user wrote the residual, so explain that
            e = residual_mismatch(*ins) if d["role"] == "residual" else err
            notes = [Note(f"{f'input {i + 1}' if len(srcs) > 1 else 'the input'} is {fmt_shape(sh)}, "
                          f"from {_describe(g, s)}", g.nodes[s]["span"])
                     for i, (s, sh) in enumerate(zip(srcs, ins, strict=True))]
            notes += [Note(f"in block `{name}`, called here", span) for name, span in reversed(d["calls"])]
            diags.append(error("shape-mismatch", str(e), d["span"], notes=notes, help=e.help))
            del e  # the exception holds this frame: kept, it would be a reference cycle
            continue
        if min(out, default=1) < 1:
            diags.append(error("shape-mismatch", f"`{n}` would produce an empty tensor {fmt_shape(out)}", d["span"]))
            continue
        if max(out, default=0) > MAX_DIM:
            diags.append(error("too-large", f"`{n}` would produce a tensor with a dimension over 10^30, more than "
                                            "any machine can hold", d["span"], help="check the sizes and scales"))
            continue
        shapes[n] = out
    return shapes, diags


def count_costs(g: LayerGraph, shapes: dict[str, Shape]) -> dict[str, Cost]:
    """Parameters (trainable and not) and multiply-accumulates of every node with a known shape."""
    costs: dict[str, Cost] = {}
    inputs = inputs_map(g)
    for n, d in g.nodes(data=True):
        if n not in shapes:
            continue
        kind, a = LAYERS[d["op"]], d["attrs"]
        ins = [shapes[s] for s in inputs[n]]
        c = Cost(macs=kind.macs(ins, shapes[n], a))
        for w in kind.weights(ins, shapes[n], a):
            if w.trainable:
                c.trainable += w.size
            else:
                c.non_trainable += w.size
        costs[n] = c
    return costs


def check_annotations(g: LayerGraph, shapes: dict[str, Shape]) -> list[Diagnostic]:
    """The shapes the spec states (`conv f=5 n=6 : 28x28x6`) against the inferred ones, one error per
    annotation (the first expansion that disagrees, for an annotation inside a block)."""
    diags: list[Diagnostic] = []
    seen = set()
    for n, dims, span, calls in g.graph["annotations"]:
        if n not in shapes or span in seen or tuple(shapes[n]) == tuple(dims):
            continue  # a layer that failed was reported already
        seen.add(span)
        d = g.nodes[n]
        got, said = fmt_shape(shapes[n]), fmt_shape(tuple(dims))
        notes = [Note(f"`{n}` ({LAYERS[d['op']].label(d['attrs'])}) gives {got}", d["span"])]
        notes += [Note(f"in block `{name}`, called here", cspan) for name, cspan in reversed(calls)]
        diags.append(error("shape-annotation", f"the output is {got}, not {said} as annotated", span, notes=notes,
                           help=f"write `: {got}`, or let `cnndsl fmt --annotate` refresh the annotations"))
    return diags
