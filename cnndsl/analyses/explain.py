"""`cnndsl explain`: the lecture notes' arithmetic of each layer, with the numbers filled in.

A pure pass over a checked Model: for every selected layer it returns the steps a student writes down
(output size ⌊(n + 2p − f)/s⌋ + 1, parameters (f·f·n_c + 1)·n_c', MACs f·f·n_c · n_H·n_W · n_c', the
depthwise-separable comparison, the receptive field), each as the formula in the notes' notation, the
formula with the numbers in it, and the value. `to_text` lays them out as plain text to paste; the CLI's
`--json` prints the same steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..layers import LAYERS, resolve_pads
from ..util import fmt_shape
from . import inputs, truncation

CONVS = {"conv", "dwconv", "sepconv", "pool"}


@dataclass
class Step:
    what: str  # "output size", "parameters", "MACs", ...
    formula: str  # in the notes' notation
    filled: str  # the same with the numbers in
    value: int | float | str


@dataclass
class Explained:
    name: str
    kind: str
    label: str
    line: int
    input: list[list[int]]
    output: list[int]
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _n(v: int) -> str:
    return f"{v:,}"


def select(model, names: list[str]) -> list[str]:
    """The layers named, in node order; a block's or value's name selects every layer inside it.
    Raises KeyError with the first name that matches nothing."""
    layers = [r.name for r in model.layers]
    if not names:
        return layers
    chosen: set[str] = set()
    for name in names:
        hit = [n for n in layers if n == name or n.startswith(name + ".")]
        if not hit:
            raise KeyError(name)
        chosen.update(hit)
    return [n for n in layers if n in chosen]


def _size_steps(n_in: tuple[int, int], a: dict, pads, out: tuple[int, int], ceil: bool) -> list[Step]:
    """⌊(n + 2p − f)/s⌋ + 1 per axis (one line when both axes agree)."""
    d = a.get("d") or (1, 1)
    axes = []
    for k in (0, 1):
        f, s, p0, p1 = a["f"][k], a["s"][k], pads[k], pads[k + 2]
        fs = str(f) if d[k] == 1 else f"({d[k]}·({f} − 1) + 1)"
        pad = f"2·{p0}" if p0 == p1 else f"{p0} + {p1}"
        lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
        pform = "2p" if p0 == p1 else "p_begin + p_end"
        fform = "f" if d[k] == 1 else "(d·(f − 1) + 1)"
        axes.append((f"{lo}(n + {pform} − {fform})/s{hi} + 1", f"{lo}({n_in[k]} + {pad} − {fs})/{s}{hi} + 1", out[k]))
    if axes[0] == axes[1] or (axes[0][1:] == axes[1][1:]):
        return [Step("output size", *axes[0])]
    return [Step("output height", *axes[0]), Step("output width", *axes[1])]


def _ff(a: dict) -> tuple[str, str, int]:
    fh, fw = a["f"]
    return ("f·f" if fh == fw else "f_h·f_w", f"{fh}·{fw}", fh * fw)


def explain(model, names: list[str] | None = None) -> list[Explained]:
    """The arithmetic of the selected layers (all by default). Raises KeyError for an unknown name."""
    g = model.layer_graph
    lost = truncation.truncations(g, {n: d["shape"] for n, d in g.nodes(data=True)})
    out = []
    for n in select(model, names or []):
        d = g.nodes[n]
        op, a = d["op"], d["attrs"]
        srcs = inputs(g)[n]
        ins = [g.nodes[s]["shape"] for s in srcs]
        e = Explained(n, op, LAYERS[op].label(a), d["line"], [list(s) for s in ins], list(d["shape"]))
        _fill(e, g, n, op, a, ins, d)
        if n in lost:
            for lo in lost[n]:
                what = truncation._plural(lo.rows, "row" if lo.axis == 0 else "column")
                e.notes.append(f"the floor drops the last {what} of the input: ({lo.n} + {lo.p0 + lo.p1} − {lo.f}) "
                               f"mod {lo.s} = {(lo.n + lo.p0 + lo.p1 - lo.f) % lo.s}")
        f = d.get("rf")
        if f is not None:
            stride, pad = (fmt_shape(v) if v[0] != v[1] else str(v[0]) for v in (f.stride, f.padding))
            where = f", effective stride {stride}, effective padding {pad}" if len(d["shape"]) == 3 else \
                " (the whole field this vector depends on)"
            e.steps.append(Step("receptive field", "r_out = r_in + (f − 1)·j_in, j_out = j_in·s",
                                f"{fmt_shape(f.size)}{where}", fmt_shape(f.size)))
            if model.rf is not None and model.rf.covers == n:
                e.notes.append(f"this is the first layer whose receptive field covers the whole "
                               f"{fmt_shape(model.input_shape[:2])} input")
        elif model.rf is not None and n in model.rf.declined:
            e.notes.append(f"no receptive field: {model.rf.declined[n]}")
        out.append(e)
    return out


def _fill(e: Explained, g, n: str, op: str, a: dict, ins, d) -> None:
    out = d["shape"]
    x = ins[0] if ins else ()
    if op in CONVS and len(x) == 3:
        pads = resolve_pads(x[0], x[1], a)
        e.steps += _size_steps(x[:2], a, pads, out[:2], bool(a.get("ceil")))
        if a.get("p") == "same":
            e.notes.append(f"p=same pads {pads[0]}+{pads[2]} rows and {pads[1]}+{pads[3]} columns "
                           "(top+bottom, left+right) to keep ⌈n/s⌉")
    ff, ffv, fv = _ff(a) if "f" in a and isinstance(a.get("f"), tuple) else ("", "", 0)
    h, w = (out[0], out[1]) if len(out) == 3 else (1, 1)
    bias = a.get("bias", False)
    if op == "conv":
        c, g_, k = x[2], a["g"], a["n"]
        cin = "n_c" if g_ == 1 else "n_c/g"
        cinv = str(c) if g_ == 1 else f"{c}/{g_}"
        if bias:
            e.steps.append(Step("parameters", f"({ff}·{cin} + 1)·n_c'", f"({ffv}·{cinv} + 1)·{k}",
                                (fv * c // g_ + 1) * k))
        else:
            e.steps.append(Step("parameters", f"{ff}·{cin}·n_c' (no bias)", f"{ffv}·{cinv}·{k}", fv * c // g_ * k))
        e.steps.append(Step("MACs", f"{ff}·{cin} · n_H·n_W · n_c'", f"{ffv}·{cinv} · {h}·{w} · {k}", d["macs"]))
        if a.get("w") is not None:
            e.notes.append(f"the kernel is fixed by the spec (w={a['w'].text}): counted, not trainable")
        _pointwise_after_dw(e, g, n, a, x, out)
    elif op == "dwconv":
        m = a["m"]
        mult = "" if m == 1 else f"·{m}"
        e.steps.append(Step("parameters", f"({ff} + 1)·n_c{'·m' if m > 1 else ''}" if bias else
                            f"{ff}·n_c{'·m' if m > 1 else ''} (no bias)",
                            f"({ffv} + 1)·{x[2]}{mult}" if bias else f"{ffv}·{x[2]}{mult}",
                            (fv + bias) * x[2] * m))
        e.steps.append(Step("MACs", f"{ff} · n_H·n_W · n_c{'·m' if m > 1 else ''}",
                            f"{ffv} · {h}·{w} · {x[2]}{mult}", d["macs"]))
    elif op == "sepconv":
        c, k = x[2], a["n"]
        dw, pw = fv * h * w * c, c * h * w * k
        e.steps.append(Step("parameters", "depthwise (f·f + 1)·n_c + pointwise (n_c + 1)·n_c'" if bias else
                            "depthwise f·f·n_c + pointwise n_c·n_c' (no bias)",
                            f"({ffv} + 1)·{c} + ({c} + 1)·{k}" if bias else f"{ffv}·{c} + {c}·{k}",
                            (fv + bias) * c + (c + bias) * k))
        e.steps.append(Step("MACs", "f·f · n_H·n_W · n_c + n_c · n_H·n_W · n_c'",
                            f"{ffv} · {h}·{w} · {c} + {c} · {h}·{w} · {k} = {_n(dw)} + {_n(pw)}", d["macs"]))
        _separable(e, ffv, fv, h, w, c, k, a, pair=False)
    elif op == "deconv":
        (sh, sw), p, (dh, dw_), (oh, ow) = a["s"], a["p"], a["d"], a["op"]
        for k, (nm, s, pp, dd, o) in enumerate((("height", sh, p[0], dh, oh), ("width", sw, p[1], dw_, ow))):
            if k == 1 and (x[0], sh, p[0], dh, oh) == (x[1], sw, p[1], dw_, ow) and a["f"][0] == a["f"][1]:
                break
            f = a["f"][k]
            e.steps.append(Step("output size" if (x[0], sh, p[0], a["f"][0]) == (x[1], sw, p[1], a["f"][1])
                                else f"output {nm}", "(n − 1)·s − 2p + d·(f − 1) + op + 1",
                                f"({x[k]} − 1)·{s} − 2·{pp} + {dd}·({f} − 1) + {o} + 1", out[k]))
        k, c = a["n"], x[2]
        g_, gv = ("/g", f"/{a['g']}") if a["g"] > 1 else ("", "")
        e.steps.append(Step("parameters", f"{ff}·n_c·n_c'{g_}" + (" + n_c'" if bias else ""),
                            f"{ffv}·{c}·{k}{gv}" + (f" + {k}" if bias else ""), d["params"]))
        e.steps.append(Step("MACs", f"n_H·n_W·n_c (input) · {ff}·n_c'{g_}",
                            f"{x[0]}·{x[1]}·{x[2]} · {ffv}·{k}{gv}", d["macs"]))
    elif op == "pool":
        e.steps.append(Step("channels", "n_c, unchanged", str(x[2]), x[2]))
        e.steps.append(Step("parameters", "none: pooling learns nothing", "0", 0))
    elif op == "fc":
        fin = 1
        for v in x:
            fin *= v
        if len(x) == 3:
            e.steps.append(Step("flatten", "n_H·n_W·n_c", f"{x[0]}·{x[1]}·{x[2]}", fin))
        k = a["n"]
        e.steps.append(Step("parameters", "(n_in + 1)·n" if bias else "n_in·n (no bias)",
                            f"({fin} + 1)·{k}" if bias else f"{fin}·{k}", (fin + bias) * k))
        e.steps.append(Step("MACs", "n_in·n", f"{fin}·{k}", d["macs"]))
    elif op == "flatten":
        e.steps.append(Step("output size", "n_H·n_W·n_c", "·".join(map(str, x)), out[0]))
    elif op == "gap":
        e.steps.append(Step("output size", "1x1xn_c: the mean of n_H·n_W positions per channel",
                            f"mean of {x[0]}·{x[1]} = {x[0] * x[1]} positions", fmt_shape(out)))
    elif op == "bn":
        c = x[-1]
        e.steps.append(Step("parameters", "2·n_c trainable (scale, shift) + 2·n_c running statistics",
                            f"2·{c} + 2·{c}", 4 * c))
    elif op == "concat":
        chans = [s[-1] for s in ins]
        e.steps.append(Step("output channels" if len(out) == 3 else "output size", "the sum of the inputs'",
                            " + ".join(map(str, chans)), out[-1]))
    elif op in ("add", "mul"):
        e.steps.append(Step("output size", "the inputs' (equal shapes" + (", or 1x1xC gates)" if op == "mul" else ")"),
                            ", ".join(fmt_shape(s) for s in ins), fmt_shape(out)))
    elif op == "upsample":
        e.steps.append(Step("output size", "n·scale", f"{x[0]}·{a['scale']}", out[0]))
    if op in ("conv", "dwconv", "sepconv", "deconv") and a.get("bn"):
        k = out[2]
        if op == "sepconv":
            e.steps.append(Step("batch norm", "4·n_c (after the depthwise) + 4·n_c' (after the pointwise)",
                                f"4·{x[2]} + 4·{k}", 4 * (x[2] + k)))
        else:
            e.steps.append(Step("batch norm", "2·n_c' trainable + 2·n_c' running statistics", f"2·{k} + 2·{k}",
                                4 * k))
        e.steps.append(Step("parameters in all", "the layer's and its batch norm's", str(d["params"]), d["params"]))
    if len(e.steps) == 0 and len(out) == len(x) and tuple(out) == tuple(x):
        e.steps.append(Step("output size", "unchanged", fmt_shape(out), fmt_shape(out)))
    if op not in CONVS and op not in ("fc",) and d["params"] == 0 and not any(s.what == "parameters"
                                                                                for s in e.steps):
        e.steps.append(Step("parameters", "none", "0", 0))


def _separable(e: Explained, ffv: str, fv: int, h: int, w: int, c: int, k: int, a: dict, pair: bool = True) -> None:
    """The notes' comparison: a normal conv with the same f and n_c' against depthwise + pointwise."""
    normal, dw, pw = fv * c * h * w * k, fv * h * w * c, c * h * w * k
    e.steps.append(Step("normal conv MACs", "f·f·n_c · n_H·n_W · n_c'", f"{ffv}·{c} · {h}·{w} · {k}", normal))
    if pair:
        e.steps.append(Step("depthwise + pointwise", "f·f · n_H·n_W · n_c + n_c · n_H·n_W · n_c'",
                            f"{_n(dw)} + {_n(pw)}", dw + pw))
    fh, fw = a["f"]
    ff2 = f"{fh}²" if fh == fw else f"({fh}·{fw})"
    e.steps.append(Step("ratio", "1/n_c' + 1/f²", f"{_n(dw + pw)}/{_n(normal)} = 1/{k} + 1/{ff2}",
                        round((dw + pw) / normal, 4)))


def _pointwise_after_dw(e: Explained, g, n: str, a: dict, x, out) -> None:
    """A 1x1 conv straight after a dwconv is the pointwise half of a depthwise-separable pair."""
    if a["f"] != (1, 1) or a["g"] != 1 or a["s"] != (1, 1):
        return
    src = inputs(g)[n][0]
    sd = g.nodes[src]
    if sd["op"] != "dwconv" or sd["attrs"]["m"] != 1:
        return
    da = sd["attrs"]
    fh, fw = da["f"]
    h, w = out[0], out[1]
    _separable(e, f"{fh}·{fw}", fh * fw, h, w, x[2], a["n"], da)
    e.notes.append(f"with `{src}` before it, this 1x1 conv is the pointwise half of a depthwise-separable "
                   "convolution: the comparison is for the pair")


def to_text(model, items: list[Explained]) -> str:
    """Plain text a student can paste: one paragraph per layer."""
    out = [f"network {model.name}, input {fmt_shape(model.input_shape)} (n_H x n_W x n_c); notation of the notes: "
           "n input size, f filter, s stride, p padding, n_c channels in, n_c' filters", ""]
    for e in items:
        ins = ", ".join(fmt_shape(s) for s in e.input)
        out.append(f"{e.name}: {e.label}   ({model.path}:{e.line})")
        out.append(f"  {ins} -> {fmt_shape(e.output)}")
        width = max((len(s.what) for s in e.steps), default=0)
        for s in e.steps:
            value = _n(s.value) if isinstance(s.value, int) else str(s.value)
            if s.what == "receptive field":
                out.append(f"  {s.what:<{width}}  {s.filled}")
            elif s.filled == value:
                out.append(f"  {s.what:<{width}}  {s.formula} = {value}")
            else:
                out.append(f"  {s.what:<{width}}  {s.formula} = {s.filled} = {value}")
        for note in e.notes:
            out.append(f"  note: {note}")
        out.append("")
    t = model.totals
    out.append(f"network total: {t.params:,} parameters ({t.trainable_params:,} trainable), {t.macs:,} MACs")
    return "\n".join(out)
