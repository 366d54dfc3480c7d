"""PyTorch backend: a checked Model -> the source of one self-contained `nn.Module` file (imports only torch).

Each layer kind says what PyTorch module it is (`LayerKind.pytorch`, a `Torch`); this module is the one
emitter that turns the graph into Python, in the manner of torch.fx's code generator: stable names, one
statement per layer. Modules nest as the spec's scopes do, so a layer `conv3_x.bottleneck2.conv1` is the
submodule `model.conv3_x.bottleneck2.conv1` and its tensors are the state_dict keys `conv3_x.bottleneck2.
conv1.weight`, ...: exactly cnndsl's weight names (batch norm included: `.bn.scale`, `.bn.mean`, ...), so an
`.npz` from `cnndsl weights` loads with `load_state_dict`, and a state_dict saved as an .npz is
`compile --weights`'s input. A block becomes a class with the parameters that vary between its calls;
branches, residuals and plain chains use small helpers (Chain, Residual, Concat, Add, Mul).
"""

from __future__ import annotations

import hashlib
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..graph import inputs_of
from ..layers import LAYERS, Torch
from ..model import Model


class EmitError(ValueError):
    """The spec cannot become Python as written (a layer named like a method of nn.Module)."""


# nn.Module's own attributes: a layer with one of these names would replace a method of the module
_MODULE_ATTRS = {
    "training", "forward", "train", "eval", "to", "cuda", "cpu", "xpu", "ipu", "mtia", "type", "float", "double",
    "half", "bfloat16", "apply", "modules", "children", "parameters", "buffers", "named_modules", "named_children",
    "named_parameters", "named_buffers", "state_dict", "load_state_dict", "zero_grad", "register_buffer",
    "register_parameter", "register_module", "add_module", "requires_grad_", "extra_repr", "get_submodule",
    "get_parameter", "get_buffer", "set_submodule", "share_memory", "compile", "to_empty", "dump_patches",
    "call_super_init", "get_extra_state", "set_extra_state",
}
_NO = object()
_RESERVED = {"self", "x", "torch", "nn", "F", "super"}


# --- the helpers the generated code may use (each included only when used) -----------------------

HELPERS: dict[str, str] = {
    "BatchNorm": '''
class BatchNorm(nn.Module):
    """Batch norm over the channels; its tensors are named as cnndsl's weights: scale, bias, mean, var."""

    def __init__(self, c, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.scale = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("mean", torch.zeros(c))
        self.register_buffer("var", torch.ones(c))

    def forward(self, x):
        return F.batch_norm(x, self.mean, self.var, self.scale, self.bias, self.training, self.momentum, self.eps)
''',
    "Conv": '''
class Conv(nn.Conv2d):
    """`conv`: n filters of f x f over c_in channels, stride s, padding p (a number, (h, w), or (top, left,
    bottom, right)), dilation d, groups g; then batch norm (`bn`) and an activation (`act`), as one layer."""

    def __init__(self, c_in, n, f, s=1, p=0, d=1, g=1, bias=True, bn=False, eps=1e-5, act=None, fixed=None):
        four = isinstance(p, tuple) and len(p) == 4
        super().__init__(c_in, n, f, s, 0 if four else p, d, g, bias)
        self.pad = (p[1], p[3], p[0], p[2]) if four else None  # F.pad's order: left, right, top, bottom
        self.bn = BatchNorm(n, eps) if bn else None
        self.act = act
        if fixed is not None:  # a kernel written in the spec: broadcast as cnndsl does, fixed, not in the state_dict
            k = torch.tensor(fixed, dtype=torch.float32)
            if k.dim() == 3:  # one kernel per filter, the same on each of its input channels
                k = k[:, None]
            k = k.reshape((1,) * (4 - k.dim()) + k.shape).expand_as(self.weight).contiguous()
            del self.weight
            self.register_buffer("weight", k, persistent=False)

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = super().forward(x)
        if self.bn is not None:
            x = self.bn(x)
        return x if self.act is None else self.act(x)
''',
    "SepConv": '''
class SepConv(nn.Module):
    """`sepconv`: a depthwise f x f conv (`dw`), then a pointwise 1x1 conv to n channels (`pw`); bn and act,
    when given, follow each."""

    def __init__(self, c_in, n, f, s=1, p=0, d=1, bias=True, bn=False, eps=1e-5, act=None):
        super().__init__()
        self.dw = Conv(c_in, c_in, f, s, p, d, c_in, bias, bn, eps, act)
        self.pw = Conv(c_in, n, 1, bias=bias, bn=bn, eps=eps, act=act)

    def forward(self, x):
        return self.pw(self.dw(x))
''',
    "Deconv": '''
class Deconv(nn.ConvTranspose2d):
    """`deconv`: transposed convolution; out = (n - 1)s - 2p + d(f - 1) + op + 1; then bn and act."""

    def __init__(self, c_in, n, f, s=1, p=0, op=0, d=1, g=1, bias=True, bn=False, eps=1e-5, act=None):
        four = isinstance(p, tuple) and len(p) == 4
        super().__init__(c_in, n, f, s, 0 if four else p, op, g, bias, d)
        self.crop = p if four else None  # top, left, bottom, right: cut from the output
        self.bn = BatchNorm(n, eps) if bn else None
        self.act = act

    def forward(self, x):
        x = super().forward(x)
        if self.crop is not None:
            t, l, b, r = self.crop
            x = x[:, :, t:x.shape[2] - b, l:x.shape[3] - r]
        if self.bn is not None:
            x = self.bn(x)
        return x if self.act is None else self.act(x)
''',
    "Pool": '''
class Pool(nn.Module):
    """`pool` with padding PyTorch's pools do not take (uneven, or more than half the window): padded first."""

    def __init__(self, mode, f, s, p, ceil=False, count_pad=True):
        super().__init__()
        self.mode, self.f, self.s, self.ceil, self.count_pad = mode, f, s, ceil, count_pad
        self.pad = (p[1], p[3], p[0], p[2])  # F.pad's order: left, right, top, bottom

    def forward(self, x):
        if self.mode == "max":
            return F.max_pool2d(F.pad(x, self.pad, value=float("-inf")), self.f, self.s, ceil_mode=self.ceil)
        y = F.avg_pool2d(F.pad(x, self.pad), self.f, self.s, ceil_mode=self.ceil)
        if self.count_pad:
            return y
        # the average of the pixels inside only: divided by the share of each window that is inside
        inside = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), self.pad), self.f, self.s, ceil_mode=self.ceil)
        return y / inside
''',
    "Affine": '''
class Affine(nn.Module):
    """`affine`: x * scale + shift per channel, fixed (not trained, not in the state_dict)."""

    def __init__(self, scale, shift):
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale), persistent=False)
        self.register_buffer("shift", torch.tensor(shift), persistent=False)

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)
''',
    "PReLU": '''
class PReLU(nn.Module):
    """`prelu`: x if x > 0 else slope * x, a learned slope per channel, named and shaped as cnndsl's weight."""

    def __init__(self, c, init=0.25, volume=True):
        super().__init__()
        self.slope = nn.Parameter(torch.full((c, 1, 1) if volume else (c,), float(init)))

    def forward(self, x):
        return F.prelu(x, self.slope.reshape(-1))
''',
    "LayerNorm": '''
class LayerNorm(nn.Module):
    """`layernorm`: normalise over the channels at every position (ConvNeXt's LayerNorm2d), then scale and
    shift per channel; on a vector, over its features."""

    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        if x.dim() == 2:
            return F.layer_norm(x, x.shape[1:], self.scale, self.bias, self.eps)
        y = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.scale, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)
''',
    "LayerScale": '''
class LayerScale(nn.Module):
    """`layerscale`: a learned factor per channel, named and shaped as cnndsl's weight."""

    def __init__(self, c, init=1e-6, volume=True):
        super().__init__()
        self.scale = nn.Parameter(torch.full((c, 1, 1) if volume else (c,), float(init)))

    def forward(self, x):
        return x * self.scale
''',
    "DropPath": '''
class DropPath(nn.Module):
    """`droppath`: stochastic depth; in training a whole sample's path is dropped with probability `rate`
    (and the kept ones scaled by 1 / (1 - rate)), at inference it is the identity."""

    def __init__(self, rate=0.0):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep
''',
    "Split": '''
class Split(nn.Module):
    """`split`: part `part` of `of` equal groups of channels."""

    def __init__(self, part, of=2):
        super().__init__()
        self.part, self.of = part, of

    def forward(self, x):
        return x.chunk(self.of, dim=1)[self.part]
''',
    "Shuffle": '''
class Shuffle(nn.Module):
    """`shuffle`: ShuffleNet's channel shuffle in g groups."""

    def __init__(self, g=2):
        super().__init__()
        self.g = g

    def forward(self, x):
        n, c = x.shape[:2]
        return x.reshape(n, self.g, c // self.g, *x.shape[2:]).transpose(1, 2).reshape(x.shape)
''',
    "Chain": '''
class Chain(nn.Sequential):
    """Layers applied one after the other, named as in the spec."""

    def __init__(self, **layers):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)
''',
    "Residual": '''
class Residual(nn.Module):
    """`residual { ... }`: the layers one after the other, plus the input (or `shortcut` applied to it)."""

    def __init__(self, **layers):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, x):
        y = x
        for name, layer in self.named_children():
            if name != "shortcut":
                y = layer(y)
        return y + (self.shortcut(x) if "shortcut" in self._modules else x)
''',
    "Concat": '''
class Concat(nn.Module):
    """`concat { a | b | ... }`: every branch applied to the input, the outputs joined on the channels."""

    def __init__(self, **branches):
        super().__init__()
        for name, branch in branches.items():
            self.add_module(name, branch)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.children()], 1)
''',
    "Add": '''
class Add(Concat):
    """`add { a | b | ... }`: every branch applied to the input, the outputs summed."""

    def forward(self, x):
        ys = [branch(x) for branch in self.children()]
        return sum(ys[1:], ys[0])
''',
    "Mul": '''
class Mul(Concat):
    """`mul { a | b | ... }`: every branch applied to the input, the outputs multiplied (1x1xC gates broadcast)."""

    def forward(self, x):
        y = None
        for branch in self.children():
            y = branch(x) if y is None else y * branch(x)
        return y
''',
}
# keyword arguments left out where they have these values ("@0": the first positional argument's value)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "Conv": dict(s=1, p=0, d=1, g=1, bias=True, bn=False, eps=1e-5),
    "SepConv": dict(s=1, p=0, d=1, bias=True, bn=False, eps=1e-5),
    "Deconv": dict(s=1, p=0, op=0, d=1, g=1, bias=True, bn=False, eps=1e-5),
    "nn.MaxPool2d": dict(stride="@0", padding=0, ceil_mode=False),
    "nn.AvgPool2d": dict(stride="@0", padding=0, ceil_mode=False),
    "nn.Linear": dict(bias=True),
    "BatchNorm": dict(eps=1e-5),
    "PReLU": dict(init=0.25, volume=True),
}
_DEPENDS = {"Conv": ["BatchNorm"], "SepConv": ["Conv"], "Deconv": ["BatchNorm"], "Add": ["Concat"],
            "Mul": ["Concat"]}


# --- what the emitter builds: layer calls, helper calls and class instances --------------------------


@dataclass
class Call:
    """A layer's module: `fn(args)`; each arg is (keyword or None, value or Call), `names` its slot names."""

    fn: str
    args: list[tuple[str | None, Any]]
    names: list[str]


@dataclass
class Item:
    """One thing a scope computes: a layer (`node`) or a nested scope (`scope`)."""

    local: str  # its attribute name in the scope's module
    node: str | None
    scope: str | None
    ins: list[str]  # the tensors it reads (node ids), in order
    outs: list[str]  # the tensors it makes that are read after it


@dataclass
class Inst:
    """A scope's module: a helper (Chain, Residual, Concat, ...) over its children, or a generated class."""

    fn: str  # the helper's name; for a class, filled in when the classes are named
    children: list[tuple[str, Any]]  # (attribute, Call or Inst), in source order
    group: Group | None = None  # the class this scope is an instance of; None for a helper
    info: dict = field(default_factory=dict)
    c_in: int | None = None
    args: dict[str, Any] = field(default_factory=dict)  # the block call's arguments, from its label


@dataclass
class Group:
    """One generated class: the scopes with the same structure (the same block, the same layers)."""

    base: str
    forward: list[str]
    forward_args: str
    insts: list[Inst] = field(default_factory=list)
    name: str = ""
    params: list[str] | None = None  # constructor parameters, once resolved
    subst: dict[int, str] = field(default_factory=dict)  # leaf index -> parameter text
    values: list[dict[str, Any]] = field(default_factory=list)  # per instance: parameter -> value


def _call(t: Torch) -> Call:
    args = [(None, _value(v)) for _, v in t.args] + [(k, _value(v)) for k, v in t.kwargs]
    return Call(t.module or "", args, [k for k, _ in t.args] + [k for k, _ in t.kwargs])


def _value(v: Any) -> Any:
    return _call(v) if isinstance(v, Torch) else v


def _skeleton(e: Any) -> Any:
    """The structure of a module expression, its values left out: equal skeletons can share a class."""
    if isinstance(e, Call):
        return (e.fn, tuple((k, _skeleton(v)) for k, v in e.args))
    if isinstance(e, Inst):
        return ("class", id(e.group)) if e.group else (e.fn, tuple((k, _skeleton(v)) for k, v in e.children))
    return "?"


def _literal(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    return repr(v)


def _camel(name: str) -> str:
    parts = re.split(r"[^0-9a-zA-Z]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out if out[:1].isalpha() else "Net" + out


def _block_args(label: str) -> dict[str, Any]:
    """`bottleneck(n=64, s=2)` -> {"n": 64, "s": 2} (the numeric arguments)."""
    out: dict[str, Any] = {}
    for k, v in re.findall(r"(\w+)=(-?[0-9][0-9.e+-]*)", label):
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


class _Emitter:
    def __init__(self, model: Model):
        self.m, self.g = model, model.layer_graph
        self.inp = self.g.graph["input"]
        self.scopes = self.g.graph["scopes"]
        self.order = {n: i for i, n in enumerate(self.g)}
        self.outputs = set(model.outputs)
        self.used: set[str] = set()
        self.groups: dict[tuple, Group] = {}

    # --- structure ---

    def inside(self, n: str, scope: str) -> bool:
        s = self.g.nodes[n]["scope"]
        return not scope or s == scope or s.startswith(scope + ".")

    def local(self, ident: str, scope: str) -> str:
        name = ident[len(scope) + 1:] if scope else ident
        if "." in name or not name.isidentifier() or keyword.iskeyword(name) or name in _MODULE_ATTRS:
            raise EmitError(f"layer `{ident}` cannot be a PyTorch submodule named `{name}`"
                            + (", a method of nn.Module" if name in _MODULE_ATTRS else "")
                            + "; give it another name in the spec")
        return name

    def items(self, scope: str) -> list[Item]:
        """What `scope` computes, in source order: its own layers and its child scopes (its merge excluded)."""
        first: dict[str, int] = {}
        own = []
        for n in self.g:
            if n == self.inp or not self.inside(n, scope):
                continue
            s = self.g.nodes[n]["scope"]
            if s == scope:
                if n != scope:
                    own.append(n)
            else:  # inside a child scope of `scope`
                rest = s[len(scope) + 1:] if scope else s
                first.setdefault((scope + "." if scope else "") + rest.split(".")[0], self.order[n])
        items = [Item(self.local(n, scope), n, None, inputs_of(self.g, n), [n]) for n in own]
        for child in first:
            ins, outs = self.boundary(child)
            items.append(Item(self.local(child, scope), None, child, ins, outs))
        items.sort(key=lambda it: self.order[it.node] if it.node else first[it.scope])
        return items

    def boundary(self, scope: str) -> tuple[list[str], list[str]]:
        """(the outside tensors the scope reads, its tensors read outside it or returned by the network)."""
        if not scope:
            return [self.inp], list(self.m.outputs)
        ins, outs = [], []
        for n in self.g:
            if n == self.inp or not self.inside(n, scope):
                continue
            for u in inputs_of(self.g, n):
                if (u == self.inp or not self.inside(u, scope)) and u not in ins:
                    ins.append(u)
            if n in self.outputs or any(not self.inside(v, scope) for v in self.g.successors(n)):
                outs.append(n)
        return ins, outs

    def readers(self, n: str, scope: str) -> int:
        return sum(1 for v in self.g.successors(n) if self.inside(v, scope)) + (n in self.outputs)

    # --- layers ---

    def layer(self, n: str) -> Torch:
        d = self.g.nodes[n]
        kind = LAYERS[d["op"]]
        if kind.pytorch is None:  # pragma: no cover - every kind has one; tests/test_pytorch.py checks
            raise EmitError(f"layer kind `{d['op']}` has no PyTorch form")
        a = d["attrs"]
        if kind.group == "act" and self.inplace_ok(n):
            a = {**a, "inplace": True}
        t = kind.pytorch([self.g.nodes[u]["shape"] for u in inputs_of(self.g, n)], d["shape"], a)
        for m in [t.module] + [v.module for _, v in t.kwargs if isinstance(v, Torch)]:
            if m and not m.startswith("nn."):
                self.use(m)
        return t

    def inplace_ok(self, n: str) -> bool:
        # NOTE: an activation may overwrite its input only where nothing else reads it and the layer that made
        # it does not need its own output for the backward pass (a sum or a concatenation does not)
        srcs = inputs_of(self.g, n)
        u = srcs[0] if len(srcs) == 1 else None
        return (u is not None and self.g.nodes[u]["op"] in ("add", "concat") and self.g.out_degree(u) == 1
                and u not in self.outputs)

    def use(self, helper: str) -> None:
        for dep in _DEPENDS.get(helper, []):
            self.use(dep)
        self.used.add(helper)

    def call_text(self, n: str, module: str, args: list[str]) -> str:
        t = self.layer(n)
        if t.call == "cat":
            return f"torch.cat([{', '.join(args)}], 1)"
        if t.call in ("+", "*"):
            return f" {t.call} ".join(args)
        return t.call.replace("{m}", module).format(*args)

    # --- scopes ---

    def unit(self, scope: str) -> Inst:
        """The module of `scope`: a helper over its children when it has a helper's plain shape, else a class."""
        info = self.scopes.get(scope, {})
        items = self.items(scope)
        children = [(it.local, self.unit(it.scope) if it.scope else _call(self.layer(it.node))) for it in items]
        ins, outs = self.boundary(scope)
        if scope and "block" not in info:
            helper = self.helper(scope, items, ins, outs)
            if helper:
                self.use(helper)
                return Inst(helper, children)
        forward = self.forward(scope, items, ins, outs)
        fargs = "x" if len(ins) == 1 else ", ".join(f"x{i + 1}" for i in range(len(ins)))
        base = info.get("block") or (scope.split(".")[-1].rstrip("0123456789") if scope else self.m.name)
        key = (base, tuple((k, _skeleton(v)) for k, v in children), tuple(forward))
        group = self.groups.setdefault(key, Group(base, forward, fargs))
        inst = Inst("", children, group, info, self.g.nodes[ins[0]]["shape"][-1] if ins else None,
                    _block_args(info.get("label", "")))
        group.insts.append(inst)
        return inst

    def helper(self, scope: str, items: list[Item], ins: list[str], outs: list[str]) -> str | None:
        """Chain, Residual, Concat, Add or Mul when the scope has that plain shape, else None."""
        if not items or len(ins) != 1 or len(outs) != 1 or any(len(i.ins) != 1 or len(i.outs) != 1 for i in items):
            return None
        if any(it.node and self.layer(it.node).call != "{m}({0})" for it in items):
            return None  # a helper calls its layers as modules: an fc that flattens first or has `act=` cannot be one
        x = ins[0]

        def only_read_by(n: str, it: Item) -> bool:
            return n not in self.outputs and all(
                v == it.node if it.node else self.inside(v, it.scope) for v in self.g.successors(n))

        def chain(its: list[Item]) -> str | None:  # the last output, when each item reads the one before
            prev = x
            for it in its:
                if it.ins != [prev] or (prev != x and not only_read_by(prev, it)):
                    return None
                prev = it.outs[0]
            return prev

        if scope not in self.g:
            return "Chain" if chain(items) == outs[0] else None
        d, srcs = self.g.nodes[scope], inputs_of(self.g, scope)
        if outs != [scope]:
            return None
        if d["op"] == "add" and self.scopes.get(scope, {}).get("kind") == "residual":
            body = [it for it in items if it.local != "shortcut"]
            short = [it for it in items if it.local == "shortcut"]
            if short and short[0].ins != [x]:
                return None
            end = chain(body) if body else None
            ok = end is not None and self.readers(end, scope) == 1 and srcs == [end, short[0].outs[0] if short else x]
            return "Residual" if ok else None
        if d["op"] in ("concat", "add", "mul") and all(it.ins == [x] for it in items) \
                and srcs == [it.outs[0] for it in items] and all(self.readers(s, scope) == 1 for s in srcs):
            return {"concat": "Concat", "add": "Add", "mul": "Mul"}[d["op"]]
        return None

    def forward(self, scope: str, items: list[Item], ins: list[str], outs: list[str]) -> list[str]:
        """The forward's statements: one per layer or nested scope, named after it."""
        taken = set(_RESERVED)
        names = {u: "x" for u in ins} if len(ins) == 1 else {u: f"x{i + 1}" for i, u in enumerate(ins)}
        taken |= set(names.values())

        def fresh(base: str) -> str:
            v = base if not keyword.iskeyword(base) else base + "_"
            while v in taken:
                v += "_"
            taken.add(v)
            return v

        lines = []
        for it in items:
            args = [names[u] for u in it.ins]
            if it.node:
                text = self.call_text(it.node, f"self.{it.local}", args)
                names[it.node] = fresh(it.local)
                lines.append(f"{names[it.node]} = {text}")
            else:
                vs = [fresh(it.local if len(it.outs) == 1 else f"{it.local}_{i + 1}") for i in range(len(it.outs))]
                names.update(zip(it.outs, vs, strict=True))
                lines.append(f"{', '.join(vs)} = self.{it.local}({', '.join(args)})")
        if scope and scope in self.g:  # the scope is itself a merge: its result is what it returns
            lines.append("return " + self.call_text(scope, "", [names[u] for u in inputs_of(self.g, scope)]))
        else:
            lines.append("return " + ", ".join(names[o] for o in outs))
        return lines

    # --- classes: parameters, names, text ---

    def leaves(self, e: Any) -> list[tuple[str, Any]]:
        """(slot name, value) of every value in a module expression, in the order `render` writes them."""
        if isinstance(e, Call):
            return [lv for (_, v), name in zip(e.args, e.names, strict=True)
                    for lv in (self.leaves(v) if isinstance(v, (Call, Inst)) else [(name, v)])]
        if isinstance(e, Inst):
            if e.group is None:
                return [lv for _, c in e.children for lv in self.leaves(c)]
            self.resolve(e.group)
            return list(e.group.values[e.group.insts.index(e)].items())
        return []

    def resolve(self, gr: Group) -> None:
        """The class's constructor parameters: the values that differ between its instances."""
        if gr.params is not None:
            return
        per = [[lv for _, c in inst.children for lv in self.leaves(c)] for inst in gr.insts]
        first = gr.insts[0]
        args = list(first.args)
        vec = lambda f: [f(inst) for inst in gr.insts]  # noqa: E731
        named: dict[str, list] = {}  # parameter -> its values per instance
        gr.subst = {}
        for i, (slot, _) in enumerate(per[0]):
            v = [p[i][1] for p in per]
            if all(x == v[0] for x in v):
                continue
            cands = [("c_in", vec(lambda inst: inst.c_in))] if slot in ("c_in", "c") else []
            cands += [(a, vec(lambda inst, a=a: inst.args.get(a))) for a in args]
            text = next((name for name, cv in cands if cv == v), None)
            if text is None:
                for a in args:
                    av = vec(lambda inst, a=a: inst.args.get(a))
                    k = next((k for k in range(2, 9) if all(isinstance(x, int) for x in av)
                              and [k * x for x in av] == v), None)
                    if k:
                        named.setdefault(a, av)
                        text = f"{k} * {a}"
                        break
            if text is None and v == vec(lambda inst: inst.c_in):
                text = "c_in"
            if text is None:
                text = next((p for p, pv in named.items() if pv == v), None)
            if text is None:
                text = re.sub(r"\W", "_", slot)
                while text in named or text in args:
                    text += "_"
            if text.isidentifier():
                named.setdefault(text, v)
            gr.subst[i] = text
        order = ["c_in"] + args
        gr.params = sorted(named, key=lambda p: order.index(p) if p in order else len(order))
        gr.values = [{p: named[p][j] for p in gr.params} for j in range(len(gr.insts))]

    def render(self, e: Any, subst: dict[int, str], counter: list[int], values: list, indent: int = 8) -> str:
        """Python text of a module expression; leaf i is `subst[i]` (a parameter) or its value in `values`."""
        if isinstance(e, Call):
            parts, first = [], None
            defaults = _DEFAULTS.get(e.fn, {})
            for k, v in e.args:
                i = counter[0]
                text = self.render(v, subst, counter, values, indent)
                if k is None and first is None:
                    first = text
                default = defaults.get(k, _NO) if k else _NO
                if default == "@0":
                    default = first
                if k and i not in subst and not isinstance(v, (Call, Inst)) and (
                        default is not _NO and (_literal(default) if default != first else default) == text):
                    continue
                parts.append((f"{k}=" if k else "") + text)
            return f"{e.fn}({', '.join(parts)})"
        if isinstance(e, Inst):
            if e.group is None:
                inner = [f"{k}={self.render(c, subst, counter, values, indent + 4)}" for k, c in e.children]
                one = f"{e.fn}({', '.join(inner)})"
                if len(one) + indent + 20 <= 120:
                    return one
                pad = " " * (indent + 4)
                return f"{e.fn}(\n" + "".join(f"{pad}{x},\n" for x in inner) + " " * indent + ")"
            parts = [f"{p}={self.render(None, subst, counter, values, indent)}" for p in e.group.params]
            return f"{e.group.name}({', '.join(parts)})"
        i = counter[0]
        counter[0] += 1
        return subst.get(i, _literal(values[i]))

    def class_text(self, gr: Group, root: bool) -> str:
        first = gr.insts[0]
        if root:
            t = self.m.totals
            doc = f"{self.m.name}: {len(self.m.layers)} layers, {t.params:,} parameters ({t.trainable_params:,} " \
                  "trainable)"
        elif first.info.get("block"):
            doc = f"block `{first.info['block']}`" + (f": {first.info['label']}" if len(gr.insts) == 1 else "")
        else:
            doc = first.info.get("label", gr.base)
        values = [v for _, c in first.children for _, v in self.leaves(c)]
        counter = [0]
        lines = [f"class {gr.name}(nn.Module):", f'    """{doc}"""', "",
                 f"    def __init__({', '.join(['self', *gr.params])}):", "        super().__init__()"]
        for k, c in first.children:
            lines.append(f"        self.{k} = {self.render(c, gr.subst, counter, values)}")
        lines += ["", f"    def forward(self, {gr.forward_args}):"] + [f"        {s}" for s in gr.forward]
        return "\n".join(lines)

    def emit(self) -> str:
        root = self.unit("")
        groups = list(self.groups.values())  # innermost first: a scope's group is made after its children's
        taken = set(HELPERS)
        for gr in groups:
            self.resolve(gr)
            name = base = _camel(gr.base)
            k = 2
            while name in taken:
                name, k = f"{base}{k}", k + 1
            gr.name = name
            taken.add(name)
        classes = [self.class_text(gr, gr is root.group) for gr in groups]
        return self.file(classes, root.group.name)

    def file(self, classes: list[str], root: str) -> str:
        spec = Path(self.m.path).name if self.m.path[:1] != "<" else self.m.path
        sha = hashlib.sha256(self.m.source.encode()).hexdigest()
        s = self.m.input_shape
        dims = f"N x {s[2]} x {s[0]} x {s[1]} (N x C x H x W)" if len(s) == 3 else f"N x {s[0]}"
        head = "\n".join([
            f'"""{self.m.name}, generated by cnndsl {__version__} from {spec} (sha256 {sha[:16]}...).',
            "",
            f"`{root}()` takes a float32 batch {dims}. Its state_dict keys are cnndsl's weight names",
            f"(`cnndsl weights {spec}`), so an .npz of them loads with",
            '    model.load_state_dict({k: torch.from_numpy(v) for k, v in numpy.load("w.npz").items()})',
            'and `numpy.savez("w.npz", **{k: v.numpy() for k, v in model.state_dict().items()})` is what',
            "`cnndsl compile --weights` reads. It imports only torch; edit it freely.",
            '"""',
            "",
            "import torch",
            "import torch.nn.functional as F",
            "from torch import nn",
        ])
        helpers = [HELPERS[h].strip("\n") for h in HELPERS if h in self.used]
        tail = f"Model = {root}  # the network, under a name that does not change: `from model import Model`"
        return "\n\n\n".join([head, *helpers, *classes, tail]) + "\n"


def to_pytorch(model: Model) -> str:
    """The Python source of a self-contained nn.Module file for `model`. Raises EmitError."""
    return _Emitter(model).emit()
