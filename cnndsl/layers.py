"""The registry of layer kinds: the one place where a kind's parameters, defaults, shape rule, weights
(hence parameter count), MACs, ONNX lowering and diagram label live.

Shapes are the lecture notes' H x W x C tuples `(h, w, c)`, or `(n,)` for a vector. Weights are declared
in ONNX layout (conv OIHW, fc [out, in]), so the parameter count and the exported initializers are the
same numbers by construction. Lowerings talk to an `OnnxCtx` (cnndsl.backends.onnx) and never import
onnx themselves, so `cnndsl check` stays free of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import field
from typing import Any

from .records import record
from .util import fmt_shape, prod
from .util import show as _show

Shape = tuple[int, ...]
Attrs = dict[str, Any]

REQUIRED = object()


class Sym(str):
    """A bare word in a spec (`same`, `avg`, `relu`, `true`) that is not a block parameter."""


class ParamError(ValueError):
    """A parameter value the kind cannot accept; `help` suggests the fix.

    `param` names the parameter (filled in by resolve_params), `missing` says a required one was not given.
    """

    def __init__(self, message: str, help: str | None = None, param: str | None = None, missing: bool = False):
        super().__init__(message)
        self.help = help
        self.param = param
        self.missing = missing


class ShapeError(ValueError):
    """A layer cannot take the shapes it is given; `help` suggests the fix."""

    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.help = help


# --- parameter types ---------------------------------------------------------------------------


def _int(v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise ParamError(f"expected a whole number, got `{_show(v)}`")
    if v < minimum:
        raise ParamError(f"must be at least {minimum}, got {v}")
    return v


def p_int(minimum: int = 1) -> Callable[[Any], int]:
    return lambda v: _int(v, minimum)


def p_odd(v: Any) -> int:
    """An odd whole number: a window centred on its position (onnxruntime's LRN takes no other)."""
    n = _int(v)
    if n % 2 == 0:
        raise ParamError(f"must be odd, got {n}", help=f"use {n - 1} or {n + 1}")
    return n


def p_float(lo: float = -math.inf, hi: float = math.inf) -> Callable[[Any], float]:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamError(f"expected a number, got `{_show(v)}`")
        if not lo <= v <= hi:
            raise ParamError(f"must be between {lo:g} and {hi:g}, got {v:g}")
        return float(v)

    return conv


def p_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, Sym) and v in ("true", "false"):
        return v == "true"
    if v in (0, 1) and isinstance(v, int):
        return bool(v)
    raise ParamError(f"expected `true` or `false`, got `{_show(v)}`")


def p_size2(minimum: int = 1) -> Callable[[Any], tuple[int, int]]:
    """`3` -> (3, 3); `1x7` -> (1, 7): height x width, as the notes write shapes."""

    def conv(v: Any) -> tuple[int, int]:
        if isinstance(v, tuple):
            if len(v) != 2:
                raise ParamError(f"expected a number or HxW, got `{_show(v)}`")
            return (_int(v[0], minimum), _int(v[1], minimum))
        n = _int(v, minimum)
        return (n, n)

    return conv


def p_pad(v: Any) -> Any:
    """`p=1`, `p=1x2` (h x w), `p=same` or `p=valid`; stored as (top, left, bottom, right) or `same`."""
    if isinstance(v, Sym):
        if v == "same":
            return "same"
        if v == "valid":
            return (0, 0, 0, 0)
        raise ParamError(f"expected a number, `same` or `valid`, got `{v}`")
    ph, pw = p_size2(0)(v)
    return (ph, pw, ph, pw)


def p_choice(*options: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if isinstance(v, str) and v in options:
            return str(v)
        raise ParamError(
            f"expected one of {', '.join(f'`{o}`' for o in options)}, got `{_show(v)}`",
            help=_did_you_mean(str(v), options),
        )

    conv.options = options  # type: ignore[attr-defined]
    return conv


def _did_you_mean(word: str, options) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


@record
class Param:
    convert: Callable[[Any], Any]
    default: Any = REQUIRED
    doc: str = ""


# --- what a kind declares ----------------------------------------------------------------------


class Init:
    """How a weight gets its value when no weights file gives one; each backend asks the weight.

    `value(shape, seed)` returns a float32 NumPy array (`seed` is a numpy SeedSequence for this weight,
    used only by random inits); `describe()` says it in words for `cnndsl weights` and the model's metadata.
    `random` inits are the ones `--no-weights` replaces with zeros.
    """

    random = False

    def value(self, shape: tuple[int, ...], seed: Any):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError


@record
class HeUniform(Init):
    """Kaiming uniform, fan_in mode, gain sqrt(2): U(-b, b) with b = sqrt(6 / fan_in), He's variance 2 / fan_in."""

    fan_in: int
    random = True

    def value(self, shape, seed):
        import numpy as np

        # NOTE: uniform, not normal: drawing normals was half of `compile resnet50` (0.45 s vs 0.20 s for 25.6 M)
        bound = np.float32(np.sqrt(6.0 / self.fan_in))
        arr = np.random.default_rng(seed).random(shape, dtype=np.float32)
        arr *= 2 * bound
        arr -= bound
        return arr

    def describe(self) -> str:
        return f"He uniform, fan_in {self.fan_in}"


@record
class Const(Init):
    """Every element the same number: batch norm's ones and zeros, PReLU's 0.25."""

    fill: float

    def value(self, shape, seed):
        import numpy as np

        return np.full(shape, self.fill, np.float32)

    def describe(self) -> str:
        return {0.0: "zeros", 1.0: "ones"}.get(self.fill, f"{self.fill:g}")


ZEROS, ONES = Const(0.0), Const(1.0)


@record
class Fixed(Init):
    """A kernel written in the spec (`w=...`), broadcast to the weight's shape; never trained."""

    kernel: FixedKernel

    def value(self, shape, seed):
        import numpy as np

        k = self.kernel
        arr = np.asarray(k.values, dtype=np.float32).reshape(k.shape)
        if len(k.shape) == 3:  # one kernel per filter (n, fh, fw): the same on every input channel of its filter
            arr = arr[:, None]
        arr = arr.reshape((1,) * (len(shape) - arr.ndim) + arr.shape)
        return np.ascontiguousarray(np.broadcast_to(arr, shape))

    def describe(self) -> str:
        return f"fixed by the spec: w={self.kernel.text}"


@record
class Weight:
    """One tensor a layer owns, in ONNX layout. `suffix` names it: `<node>.<suffix>`."""

    suffix: str
    shape: tuple[int, ...]
    init: Init
    trainable: bool = True

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def fixed(self) -> FixedKernel | None:
        """The kernel written in the spec, when the value is fixed by it (never read from a weights file)."""
        return self.init.kernel if isinstance(self.init, Fixed) else None


@record
class Torch:
    """A kind's PyTorch form, for cnndsl.backends.pytorch: the module its layer holds, built in `__init__` as
    `module(*args, **kwargs)` (`args` and `kwargs` are (name, value) pairs, a value may itself be a Torch), and
    the expression its `forward` computes: `call` with `{m}` the module and `{0}`, `{1}`... its inputs; a
    merge has no module and `call` "+" or "*" (the inputs joined by it) or "cat" (torch.cat on channels).
    """

    module: str | None
    args: tuple = ()
    kwargs: tuple = ()
    call: str = "{m}({0})"


@record
class LayerKind:
    """Everything cnndsl knows about one layer kind.

    infer(ins, a) -> out shape;  weights(ins, out, a) -> [Weight];  macs(ins, out, a) -> int;
    lower(ctx, node, ins, out, a) emits ONNX nodes;  label(a) -> the notes' notation for diagrams.
    """

    name: str
    doc: str
    params: dict[str, Param]
    infer: Callable[[list[Shape], Attrs], Shape]
    lower: Callable[..., None]
    label: Callable[[Attrs], str]
    weights: Callable[[list[Shape], Shape, Attrs], list[Weight]] = lambda ins, out, a: []
    macs: Callable[[list[Shape], Shape, Attrs], int] = lambda ins, out, a: 0
    positional: tuple[str, ...] = ()
    arity: tuple[int, int | None] = (1, 1)  # (min, max) inputs; max None = unbounded
    group: str = "other"  # for colours and docs: conv, pool, norm, act, merge, fc, shape, io
    finalize: Callable[[Attrs], Attrs] = lambda a: a  # derived defaults, e.g. pool's s = f
    symbol: str = ""  # a merge's one-character diagram label, drawn in a small circle
    window: str = ""  # the parameter that a bare size means (`f`): `conv 3x3 n=64` gets the hint `f=3x3`
    # importing (cnndsl.onnx_import): the inverse of `lower`. `lifts` names the ONNX ops the kind may come
    # from; `lift(v)` looks at one node through an OnnxView and returns a Lifted (spec parameters, weights by
    # suffix, the nodes it absorbs) or None when the node is not this kind.
    lifts: tuple[str, ...] = ()
    lift: Callable[..., Lifted | None] | None = None
    pytorch: Callable[[list[Shape], Shape, Attrs], Torch] | None = None  # its PyTorch module (`compile --to pytorch`)

    @property
    def is_merge(self) -> bool:
        return self.arity[1] is None or self.arity[1] > 1


@record(frozen=False)
class Lifted:
    """What a kind makes of an ONNX node when importing: `params` as a spec writes them (sizes as (h, w),
    words as `Sym`), `weights` by suffix in ONNX layout, and the ONNX nodes it absorbed besides its own
    (a Sigmoid that became part of `silu`)."""

    params: dict[str, Any]
    weights: dict[str, Any] = field(default_factory=dict)
    absorbs: list[Any] = field(default_factory=list)
    # the node's inputs that carry data (the others are weights, constants), or a tensor's name when the kind
    # absorbed the nodes before it (shuffle's Reshape and Transpose)
    inputs: tuple[int | str, ...] = (0,)


class Unliftable(ValueError):
    """An ONNX node of a kind's op that cnndsl cannot express (asymmetric padding, a count_include_pad=0
    average with padding, ...): the importer lists it with its reason."""


LAYERS: dict[str, LayerKind] = {}


def register(kind: LayerKind) -> LayerKind:
    LAYERS[kind.name] = kind
    return kind


def resolve_params(kind: LayerKind, given: dict[str, Any]) -> Attrs:
    """Apply defaults and converters. Raises ParamError naming the parameter (a `.param` attribute)."""
    out: Attrs = {}
    for name, p in kind.params.items():
        if name in given:
            try:
                out[name] = p.convert(given[name])
            except ParamError as e:
                e.param = name
                raise
        elif p.default is REQUIRED:
            raise ParamError(f"`{kind.name}` needs `{name}` ({p.doc})", help=f"add `{name}=...` to the layer",
                             param=name, missing=True)
        else:
            out[name] = None if p.default is None else p.convert(p.default)
    return kind.finalize(out)


# --- activation functions (usable as layers and as `act=` on conv/fc) ----------------------------


@record
class Activation:
    """One activation function: the one table that `act=`, the standalone layer of the same name and
    every backend read. `lower(ctx, x, y, a, shape)` emits ONNX ops from tensor x to tensor y (NCHW or
    [N, F]); `shape` is x's when it is not the layer's output shape (sepconv's depthwise half); `a` holds
    the activation's own parameters (`params`)."""

    name: str
    doc: str
    lower: Callable[..., None]
    params: dict[str, Param] = field(default_factory=dict)
    lifts: tuple[str, ...] = ()  # the ONNX ops it is imported from (cnndsl.onnx_import)
    lift: Callable[..., Any] | None = None  # lift(v) -> Lifted | None, as LayerKind.lift


def _unary(op: str, **kw) -> Callable[..., None]:
    return lambda ctx, x, y, a, shape: ctx.node(op, [x], [y], **kw)


def _lower_silu(ctx, x, y, a, shape) -> None:
    s = ctx.tmp("sigmoid", shape)
    ctx.node("Sigmoid", [x], [s])
    ctx.node("Mul", [x, s], [y])


def _lift_unary(op: str, **want: float) -> tuple[tuple[str, ...], Callable[..., Any]]:
    """An activation imported from one ONNX op whose attributes equal `want` (defaults as ONNX's)."""

    def lift(v):
        if all(abs(float(v.attr(k, d)) - d) < 1e-6 for k, d in want.items()):
            return Lifted({})
        return None

    return (op,), lift


def _lift_clip(v):
    lo = v.attr("min") if v.attr("min") is not None else (v.const(1) if v.n_inputs > 1 else None)
    hi = v.attr("max") if v.attr("max") is not None else (v.const(2) if v.n_inputs > 2 else None)
    if lo is not None and hi is not None and float(lo) == 0.0 and float(hi) == 6.0:
        return Lifted({})
    return None


def _lift_silu(v):
    """x * sigmoid(x), as PyTorch exports SiLU: Mul(x, Sigmoid(x))."""
    for i in (0, 1):
        sig = v.producer(1 - i)
        if sig is not None and sig.op == "Sigmoid" and sig.input_name(0) == v.input_name(i) and sig.sole_consumer:
            return Lifted({}, absorbs=[sig], inputs=(i,))
    return None


def _scalar(v, i: int) -> float | None:
    c = v.const(i)
    return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None


def _erf_plus_one(add, x: str | None = None):
    """Add(Erf(x / sqrt 2), 1) (or x * 1/sqrt 2): (x's name, the nodes) or None."""
    if add is None or add.op != "Add":
        return None
    k = next((k for k in (0, 1) if _scalar(add, k) is not None and abs(_scalar(add, k) - 1) < 1e-7), None)
    erf = add.producer(1 - k) if k is not None else None
    div = erf.producer(0) if erf is not None and erf.op == "Erf" else None
    if div is None or _scalar(div, 1) is None or not (add.sole_consumer and erf.sole_consumer):
        return None
    want = math.sqrt(2) if div.op == "Div" else 1 / math.sqrt(2) if div.op == "Mul" else None
    if want is None or abs(_scalar(div, 1) - want) > 1e-6 or (x is not None and div.input_name(0) != x):
        return None
    return div.input_name(0), [add, erf, div]


def _lift_gelu(v):
    """Gelu, or x * Phi(x) as PyTorch writes it below opset 20: Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)
    from the TorchScript exporter, Mul(x, Mul(Add(...), 0.5)) from the dynamo exporter."""
    if v.op == "Gelu":
        return Lifted({}) if v.attr("approximate", "none") == "none" else None
    for i in (0, 1):
        inner = v.producer(1 - i)
        if inner is None or inner.op != "Mul" or not inner.sole_consumer:
            continue
        leaves = [(v, i), (inner, 0), (inner, 1)]
        for half in leaves:
            c = _scalar(*half)
            if c is None or abs(c - 0.5) > 1e-7:
                continue
            rest = [lf for lf in leaves if lf != half]
            for a, b in (rest, rest[::-1]):
                found = _erf_plus_one(a[0].producer(a[1]))
                if found is not None and b[0].input_name(b[1]) == found[0] and b[0].const(b[1]) is None:
                    return Lifted({}, absorbs=[inner, *found[1]], inputs=(found[0],))
    return None


def _lift_softmax(v):
    axis = int(v.attr("axis", -1))
    rank = len(v.in_shape(0)) + 1
    return Lifted({}) if axis % rank == 1 else None


ACTIVATIONS: dict[str, Activation] = {act.name: act for act in (
    Activation("relu", "max(0, x)", _unary("Relu"), {}, *_lift_unary("Relu")),
    Activation("relu6", "min(max(0, x), 6) (MobileNet)", lambda ctx, x, y, a, shape: ctx.node(
        "Clip", [x, ctx.const("zero", 0.0), ctx.const("six", 6.0)], [y]), {}, ("Clip",), _lift_clip),
    Activation("sigmoid", "1 / (1 + e^-x)", _unary("Sigmoid"), {}, *_lift_unary("Sigmoid")),
    Activation("tanh", "hyperbolic tangent", _unary("Tanh"), {}, *_lift_unary("Tanh")),
    Activation("leakyrelu", "x if x > 0 else alpha * x", lambda ctx, x, y, a, shape: ctx.node(
        "LeakyRelu", [x], [y], alpha=float(a.get("alpha", 0.01))),
        {"alpha": Param(p_float(), 0.01, "negative slope")}, ("LeakyRelu",),
        lambda v: Lifted({} if abs(float(v.attr("alpha", 0.01)) - 0.01) < 1e-9 else {"alpha": float(v.attr("alpha"))})),
    Activation("elu", "x if x > 0 else e^x - 1", _unary("Elu", alpha=1.0), {}, *_lift_unary("Elu", alpha=1.0)),
    Activation("silu", "x * sigmoid(x), a.k.a. swish (EfficientNet)", _lower_silu, {}, ("Mul",), _lift_silu),
    Activation("hardswish", "x * relu6(x + 3) / 6 (MobileNet-v3)", _unary("HardSwish"), {}, *_lift_unary("HardSwish")),
    # PyTorch's definition: relu6(x + 3) / 6
    Activation("hardsigmoid", "relu6(x + 3) / 6", _unary("HardSigmoid", alpha=1.0 / 6.0, beta=0.5), {},
               *_lift_unary("HardSigmoid", alpha=1.0 / 6.0, beta=0.5)),
    Activation("gelu", "x * Phi(x)", _unary("Gelu"), {}, ("Gelu", "Mul"), _lift_gelu),
    Activation("softmax", "normalised exponential over the channels (or the vector)", _unary("Softmax", axis=1),
               {}, ("Softmax",), _lift_softmax),
)}
_act_name = p_choice("none", *ACTIVATIONS)


class Act(str):
    """The value of `act=`: the activation's name (it compares equal to it, `a["act"] == "relu"`) and its
    own parameters, resolved with their defaults (`act=leakyrelu(0.1)` -> params {"alpha": 0.1})."""

    def __new__(cls, name: str, params: Attrs | None = None):
        s = super().__new__(cls, name)
        s.params = dict(params or {})
        return s

    def __eq__(self, other):
        if isinstance(other, Act) and self.params != other.params:
            return False
        return str.__eq__(self, other)

    __hash__ = str.__hash__

    def __reduce__(self):
        return (Act, (str(self), self.params))

    def label(self) -> str:
        """`leakyrelu(0.1)` where a parameter differs from its default, else the bare name."""
        act = ACTIVATIONS.get(str(self))
        changed = [v for k, v in self.params.items() if act and k in act.params and v != act.params[k].default]
        return f"{str(self)}({', '.join(_show(v) for v in changed)})" if changed else str(self)


def p_act(v: Any) -> Act:
    """`act=relu`, `act=none`, `act=leakyrelu(0.1)` (an Act made by the graph builder)."""
    name = _act_name(v)
    params = v.params if isinstance(v, Act) else {}
    if name != "none":
        params = {k: p.convert(params[k]) if k in params else p.default for k, p in ACTIVATIONS[name].params.items()}
    return Act(name, params)


p_act.options = _act_name.options  # type: ignore[attr-defined]


_TORCH_ACTS = {
    "relu": "nn.ReLU", "relu6": "nn.ReLU6", "sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh", "leakyrelu": "nn.LeakyReLU",
    "elu": "nn.ELU", "silu": "nn.SiLU", "hardswish": "nn.Hardswish", "hardsigmoid": "nn.Hardsigmoid",
    "gelu": "nn.GELU", "softmax": "nn.Softmax",
}


def torch_act(name: str, a: Attrs, inplace: bool = False) -> Torch:
    """The PyTorch module of activation `name`; `inplace` where the input tensor is not needed again."""
    if name == "leakyrelu":
        return Torch("nn.LeakyReLU", (("alpha", float(a.get("alpha", 0.01))),))
    if name == "softmax":
        return Torch("nn.Softmax", kwargs=(("dim", 1),))
    inplace_ok = name in ("relu", "relu6", "silu", "hardswish", "hardsigmoid") and inplace
    return Torch(_TORCH_ACTS[name], kwargs=(("inplace", True),) if inplace_ok else ())


def _torch_post(a: Attrs) -> list[tuple[str, Any]]:
    """The `bias=`/`bn=`/`act=` keyword arguments of the PyTorch Conv helpers (the conv's output is fresh, so its
    activation works in place). Every argument is given: the emitter leaves out the defaults."""
    kw: list[tuple[str, Any]] = [("bias", a.get("bias", True)), ("bn", a.get("bn", False)), ("eps", a.get("eps", 1e-5))]
    if a.get("act", "none") != "none":
        kw.append(("act", torch_act(a["act"], a, inplace=True)))
    return kw


def _lower_act(ctx, name: str, x: str, y: str, a: Attrs, shape: Shape | None = None) -> None:
    """Emit activation `name` (or an Identity for `none`) from tensor x to tensor y; an `Act` carries its
    own parameters, a bare name (a standalone activation layer) takes them from `a`."""
    if name == "none":
        ctx.node("Identity", [x], [y])
    else:
        ACTIVATIONS[name].lower(ctx, x, y, name.params if isinstance(name, Act) else a, shape)


def _act_suffix(a: Attrs) -> str:
    act = a.get("act", "none")
    return f", {act.label() if isinstance(act, Act) else act}" if act != "none" else ""


def emit_post(ctx, node: str, y_pre: str, y: str, a: Attrs, bn: str | None = None, shape: Shape | None = None) -> None:
    """Optional batch norm then optional activation, from y_pre to y (conv-like kinds' `bn=`/`act=`)."""
    cur = y_pre
    if a.get("bn"):
        out = y if a.get("act", "none") == "none" else ctx.tmp("bn", shape)
        prefix = bn or f"{node}.bn"
        ctx.node(
            "BatchNormalization",
            [cur, f"{prefix}.scale", f"{prefix}.bias", f"{prefix}.mean", f"{prefix}.var"],
            [out],
            epsilon=float(a.get("eps", 1e-5)),
        )
        cur = out
    if a.get("act", "none") != "none":
        _lower_act(ctx, a["act"], cur, y, a, shape)
    elif cur != y:
        ctx.node("Identity", [cur], [y])


def bn_weights(c: int, prefix: str = "bn") -> list[Weight]:
    """Batch norm's learned scale and shift, and its running statistics (not trainable)."""
    p = f"{prefix}." if prefix else ""
    return [
        Weight(f"{p}scale", (c,), ONES),
        Weight(f"{p}bias", (c,), ZEROS),
        Weight(f"{p}mean", (c,), ZEROS, trainable=False),
        Weight(f"{p}var", (c,), ONES, trainable=False),
    ]


# --- shape helpers -----------------------------------------------------------------------------


def need_3d(ins: list[Shape], kind: str) -> tuple[int, int, int]:
    s = ins[0]
    if len(s) != 3:
        raise ShapeError(
            f"`{kind}` needs an HxWxC volume, got a vector of {s[0]}",
            help="spatial layers must come before `fc`/`flatten`",
        )
    return s  # type: ignore[return-value]


def resolve_pads(h: int, w: int, a: Attrs) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) padding for a conv or pool window on an h x w input.

    `same` keeps ceil(n / s) outputs; it pads symmetrically when that gives the same size (as PyTorch
    does, p = (f - 1) / 2 for odd f) and puts the odd pixel at the bottom/right otherwise (as TF does).
    """
    p = a["p"]
    if p != "same":
        return p
    dil = a.get("d", (1, 1))
    key = (h, w, a["f"], a["s"], dil)
    got = _SAME.get(key)
    if got is None:
        if len(_SAME) > 4096:  # bounded: a network has a few dozen distinct windows and sizes
            _SAME.clear()
        got = _SAME[key] = _same_pads(h, w, a["f"], a["s"], dil)
    return got


_SAME: dict[tuple, tuple[int, int, int, int]] = {}  # `same` padding by (h, w, f, s, d): the passes ask per layer


def _same_pads(h: int, w: int, fs: tuple[int, int], ss: tuple[int, int], dil: tuple[int, int]):
    pads = []
    for n, f, s, d in ((h, fs[0], ss[0], dil[0]), (w, fs[1], ss[1], dil[1])):
        eff = d * (f - 1) + 1
        want = -(-n // s)
        total = max((want - 1) * s + eff - n, 0)
        half = -(-total // 2)
        if (n + 2 * half - eff) // s + 1 == want:
            pads.append((half, half))
        else:
            pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return (top, left, bottom, right)


def window_out(n: int, f: int, s: int, pad0: int, pad1: int, d: int = 1, ceil: bool = False) -> int:
    """The notes' formula floor((n + 2p - f) / s) + 1, with dilation and PyTorch's ceil mode."""
    eff = d * (f - 1) + 1
    span = n + pad0 + pad1 - eff
    if span < 0:
        return 0
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + pad0:  # the last window must start inside the input or left padding
        out -= 1
    return out


def _window(ins: list[Shape], a: Attrs, kind: str, ceil: bool = False) -> tuple[int, int, int, tuple]:
    h, w, c = need_3d(ins, kind)
    d = a.get("d", (1, 1))
    pads = resolve_pads(h, w, a)
    (fh, fw), (sh, sw) = a["f"], a["s"]
    eh, ew = d[0] * (fh - 1) + 1, d[1] * (fw - 1) + 1
    ph, pw = h + pads[0] + pads[2], w + pads[1] + pads[3]
    if ph < eh or pw < ew:
        what = f"{fh}x{fw}" + (f" (dilated to {eh}x{ew})" if (eh, ew) != (fh, fw) else "")
        padded = f" ({ph}x{pw} after padding)" if (ph, pw) != (h, w) else ""
        need_h, need_w = max(eh - pads[0] - pads[2], 1), max(ew - pads[1] - pads[3], 1)
        raise ShapeError(
            f"`{kind}` filter {what} is larger than its input {h}x{w}x{c}{padded}",
            help=f"the smallest input that fits is {need_h}x{need_w}; or use `p=same` or a smaller `f`",
        )
    ho = window_out(h, fh, sh, pads[0], pads[2], d[0], ceil)
    wo = window_out(w, fw, sw, pads[1], pads[3], d[1], ceil)
    return ho, wo, c, pads


def _onnx_pads(p: tuple[int, int, int, int]) -> list[int]:
    """ONNX orders pads as [H begin, W begin, H end, W end]: our (top, left, bottom, right)."""
    return list(p)


def _conv_label(name: str, a: Attrs, extra: str = "") -> str:
    f = a["f"]
    parts = [f"{name} {f[0]}x{f[1]}"]
    parts.append(f"s={_show(a['s']) if a['s'][0] != a['s'][1] else a['s'][0]}")
    p = a.get("p")
    if p == "same":
        parts.append("p=same")
    elif p and any(p):
        parts.append(f"p={p[0]}" if len(set(p)) == 1 else f"p={p[0]}x{p[1]}")
    if extra:
        parts.append(extra)
    label = ", ".join(parts)
    if a.get("bn"):
        label += ", bn"
    return label + _act_suffix(a)


# --- fixed kernels (the notes' edge detection) --------------------------------------------------

# Cross-correlation kernels, as the notes apply them: `vertical` gives a positive response where the
# image is bright on the left and dark on the right. `_v` kernels find vertical edges (a change from
# left to right), `_h` kernels horizontal ones (a change from top to bottom); each `_h` is its `_v`
# transposed. `sobel` and `scharr` alone mean the `_v` kernels, as the notes write "Sobel filter".
KERNELS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vertical": ((1, 0, -1), (1, 0, -1), (1, 0, -1)),
    "horizontal": ((1, 1, 1), (0, 0, 0), (-1, -1, -1)),
    "sobel_v": ((1, 0, -1), (2, 0, -2), (1, 0, -1)),
    "sobel_h": ((1, 2, 1), (0, 0, 0), (-1, -2, -1)),
    "scharr_v": ((3, 0, -3), (10, 0, -10), (3, 0, -3)),
    "scharr_h": ((3, 10, 3), (0, 0, 0), (-3, -10, -3)),
    "laplacian": ((0, 1, 0), (1, -4, 1), (0, 1, 0)),
}
KERNELS["sobel"] = KERNELS["sobel_v"]
KERNELS["scharr"] = KERNELS["scharr_v"]


@record
class FixedKernel:
    """Conv weights written in the spec (`w=vertical`, `w=[[1,0,-1], ...]`), flattened row-major.

    `shape` is as written: (fh, fw) is every filter's kernel on every input channel; (n, fh, fw) gives
    each filter its own kernel; (n, c/g, fh, fw) is the whole weight tensor (ONNX's OIHW order).
    """

    shape: tuple[int, ...]
    values: tuple[float, ...]
    text: str  # the name, or the literal's shape, for labels and messages

    def expand(self, n: int, c: int, fh: int, fw: int) -> None:
        """Raise ShapeError unless the kernel fits a conv with n filters of fh x fw over c channels."""
        k, w = len(self.shape), f"`conv w={self.text}`"
        want = {2: (fh, fw), 3: (n, fh, fw), 4: (n, c, fh, fw)}[k]
        if self.shape == want:
            return
        f = f"{fh}x{fw}"
        if k == 2:
            raise ShapeError(f"{w} is a {fmt_shape(self.shape)} kernel, but the filters are {f}",
                             help=f"write a {f} matrix, or set `f={fmt_shape(self.shape)}`")
        if k == 3:
            raise ShapeError(
                f"{w} gives {self.shape[0]} kernels of {fmt_shape(self.shape[1:])} (one per filter), "
                f"but the conv has n={n} filters of {f}",
                help=f"give {n} kernels of {f}, or set `n={self.shape[0]}`" if self.shape[1:] == (fh, fw)
                else f"give {n} kernels of {f}")
        raise ShapeError(f"{w} is a {fmt_shape(self.shape)} weight tensor, but the conv needs "
                         f"n x C_in x fh x fw = {fmt_shape(want)}",
                         help=f"give {fmt_shape(want)} numbers, or one {f} matrix for every filter and channel")


def _nested(v: Any, depth: int = 0) -> tuple[tuple[int, ...], list[float]]:
    """(shape, flat values) of a rectangular nested list of numbers and kernel names."""
    if isinstance(v, Sym):
        if v not in KERNELS:
            raise ParamError(
                f"unknown kernel `{v}`; the named kernels are {', '.join(f'`{k}`' for k in KERNELS)}",
                help=_did_you_mean(str(v), KERNELS) or "or write the matrix, e.g. `w=[[1,0,-1],[1,0,-1],[1,0,-1]]`",
            )
        v = [list(row) for row in KERNELS[v]]
    if isinstance(v, bool) or isinstance(v, str):
        raise ParamError(f"a kernel holds numbers, got `{_show(v)}`")
    if isinstance(v, (int, float)):
        if depth == 0:
            raise ParamError(f"expected a kernel matrix such as `[[1,0,-1],[1,0,-1],[1,0,-1]]` or a name, got `{v}`",
                             help=f"the named kernels are {', '.join(f'`{k}`' for k in KERNELS)}")
        return (), [float(v)]
    if not isinstance(v, list) or not v:
        raise ParamError(f"expected a kernel matrix or a name, got `{_show(v)}`")
    parts = [_nested(x, depth + 1) for x in v]
    shapes = {sh for sh, _ in parts}
    if len(shapes) != 1:
        raise ParamError(
            "the kernel's rows are not all the same size: " + ", ".join(fmt_shape(sh) or "a number" for sh, _ in parts),
            help="every row of a kernel matrix needs the same number of entries",
        )
    return (len(v), *shapes.pop()), [x for _, vals in parts for x in vals]


def p_kernel(v: Any) -> FixedKernel:
    """`w=vertical`, `w=[[1,0,-1],[1,0,-1],[1,0,-1]]`, `w=[sobel_v, sobel_h]` -> FixedKernel."""
    shape, values = _nested(v)
    if not 2 <= len(shape) <= 4:
        raise ParamError(f"a kernel is a matrix (or a list of matrices), got {len(shape)} level(s) of brackets",
                         help="write rows of numbers: `w=[[1,0,-1],[1,0,-1],[1,0,-1]]`")
    text = str(v) if isinstance(v, Sym) else (
        "[" + ", ".join(map(str, v)) + "]" if all(isinstance(x, Sym) for x in v) else f"[{fmt_shape(shape)}]")
    return FixedKernel(shape, tuple(values), text)


# --- convolutions ------------------------------------------------------------------------------

def _lift_window(v, kind: str, dilations: bool = True) -> dict[str, Any]:
    """f, s, p, d of a Conv/ConvTranspose/pool node, as a spec writes them."""
    k = v.attr("kernel_shape") or list(v.const(1).shape[2:])
    f = tuple(int(x) for x in k)
    if len(f) != 2:
        raise Unliftable(f"a {len(f)}-D window (cnndsl layers are 2-D)")
    s = tuple(int(x) for x in v.attr("strides", [1, 1]))
    d = tuple(int(x) for x in v.attr("dilations", [1, 1]))
    if not dilations and d != (1, 1):
        raise Unliftable("a dilated pooling window")
    out = {"f": f, "s": s}
    if d != (1, 1):
        out["d"] = d
    auto = v.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if auto == "SAME_LOWER":
            raise Unliftable("auto_pad SAME_LOWER (cnndsl's `p=same` puts an odd pixel bottom/right)")
        out["p"] = Sym("same")
        return out
    pads = tuple(int(x) for x in v.attr("pads", [0, 0, 0, 0]))
    if pads[0] == pads[2] and pads[1] == pads[3]:
        if any(pads):
            out["p"] = pads[:2]
        return out
    h, w = v.in_shape(0)[:2]
    same = resolve_pads(h, w, {"f": f, "s": s, "d": d, "p": "same"})
    if tuple(same) == pads:
        out["p"] = Sym("same")
        return out
    raise Unliftable(f"asymmetric padding {list(pads)} that `p=same` does not reproduce")


def _lift_pointwise(v) -> Lifted | None:
    """MatMul by a constant [C, n] on a channels-last view (a Linear applied at every position, as in
    ConvNeXt's blocks) is a 1x1 conv; a following Add of a constant [n] is its bias."""
    w = v.const(1)
    if w is None or w.ndim != 2 or not v.channels_last(0) or len(v.in_shape(0)) != 3:
        return None
    n = w.shape[1]
    weights, absorbs = {"weight": w.T.reshape(n, -1, 1, 1)}, []
    imp = v._imp
    users = imp.consumers[v.node.output[0]]
    if len(users) == 1 and users[0].op_type == "Add":
        from .onnx_import import OnnxView

        add = OnnxView(imp, users[0])
        k = 1 if add.input_name(0) == v.node.output[0] else 0
        b = add.const(k)
        if b is not None and b.size == n and b.shape[-1:] == (n,):
            weights["bias"], absorbs = b.reshape(-1), [add]
    return Lifted({"f": (1, 1), "n": n, **({} if absorbs else {"bias": False})}, weights, absorbs)


def _with_bias(v, params: dict[str, Any], w) -> Lifted:
    """A conv-like node's weight, and its bias when the node has one (else the layer says `bias=false`)."""
    b = v.const(2) if v.n_inputs > 2 else None
    if b is None:
        params["bias"] = False
    return Lifted(params, {"weight": w, **({"bias": b} if b is not None else {})})


def _lift_conv(v) -> Lifted | None:
    if v.op == "MatMul":
        return _lift_pointwise(v)
    w = v.const(1)
    if w is None or w.ndim != 4:
        return None
    g = int(v.attr("group", 1))
    c, n = v.in_shape(0)[2], w.shape[0]
    if g > 1 and g == c and n % c == 0:
        return None  # depthwise: `dwconv`
    params = {**_lift_window(v, "conv"), "n": n}
    if g != 1:
        params["g"] = g
    return _with_bias(v, params, w)


def _lift_dwconv(v) -> Lifted | None:
    w = v.const(1)
    g, c = int(v.attr("group", 1)), v.in_shape(0)[2]
    if w is None or w.ndim != 4 or g == 1 or g != c or w.shape[0] % c:
        return None
    params = _lift_window(v, "dwconv")
    if w.shape[0] != c:
        params["m"] = w.shape[0] // c
    return _with_bias(v, params, w)


_CONV_COMMON = {
    "f": Param(p_size2(), REQUIRED, "filter size f, or HxW such as 1x7"),
    "s": Param(p_size2(), 1, "stride s"),
    "p": Param(p_pad, 0, "padding p: a number, HxW, `same` or `valid`"),
    "d": Param(p_size2(), 1, "dilation"),
    "bias": Param(p_bool, True, "learned bias per output channel"),
    "bn": Param(p_bool, False, "batch norm after the convolution"),
    "act": Param(p_act, "none", "activation after the convolution (and batch norm)"),
    "eps": Param(p_float(0.0), 1e-5, "batch norm epsilon"),
}

_CONV_W = Param(p_kernel, None, "fixed kernel, not trained: a matrix `[[1,0,-1],...]` or a name: "
                + ", ".join(KERNELS))


def _conv_infer(ins: list[Shape], a: Attrs) -> Shape:
    c = ins[0][2] if len(ins[0]) == 3 else None
    if c is not None and (c % a["g"] or a["n"] % a["g"]):
        raise ShapeError(
            f"`conv g={a['g']}` needs input and output channels divisible by {a['g']}, got {c} -> {a['n']}",
            help="choose `g` dividing both channel counts",
        )
    ho, wo, _, _ = _window(ins, a, "conv")
    if a.get("w") is not None:
        a["w"].expand(a["n"], c // a["g"], *a["f"])
    return (ho, wo, a["n"])


def _conv_weights(ins, out, a) -> list[Weight]:
    c, (fh, fw), g, n = ins[0][2], a["f"], a["g"], a["n"]
    if a.get("w") is not None:  # spec-given: counted as parameters, but not trainable (like bn statistics)
        ws = [Weight("weight", (n, c // g, fh, fw), Fixed(a["w"]), trainable=False)]
    else:
        ws = [Weight("weight", (n, c // g, fh, fw), HeUniform(c // g * fh * fw))]
    if a["bias"]:
        ws.append(Weight("bias", (n,), ZEROS))
    return ws + (bn_weights(n) if a["bn"] else [])


def _conv_macs(ins, out, a) -> int:
    (fh, fw), c = a["f"], ins[0][2]
    return fh * fw * (c // a["g"]) * out[0] * out[1] * out[2]


def _lower_conv(ctx, node, ins, out, a) -> None:
    h, w, _ = ins[0]
    inputs = [ctx.input(0), f"{node}.weight"] + ([f"{node}.bias"] if a["bias"] else [])
    pre = ctx.output if not (a["bn"] or a["act"] != "none") else ctx.tmp("conv")
    ctx.node(
        "Conv", inputs, [pre], kernel_shape=list(a["f"]), strides=list(a["s"]),
        pads=_onnx_pads(resolve_pads(h, w, a)), dilations=list(a["d"]), group=a["g"],
    )
    emit_post(ctx, node, pre, ctx.output, a)


def _sq(v: tuple) -> Any:
    """(3, 3) -> 3, as PyTorch takes a square size; (1, 7) stays."""
    return v[0] if len(set(v)) == 1 else tuple(v)


def _torch_pads(h: int, w: int, a: Attrs) -> Any:
    """`p=` of the PyTorch helpers: a number, (h, w), or (top, left, bottom, right) when not symmetric."""
    top, left, bottom, right = resolve_pads(h, w, a)
    if (top, left) != (bottom, right):
        return (top, left, bottom, right)
    return _sq((top, left))


def _torch_conv_kw(ins: list[Shape], a: Attrs, g: int = 1) -> list[tuple[str, Any]]:
    kw = [("s", _sq(a["s"])), ("p", _torch_pads(ins[0][0], ins[0][1], a)), ("d", _sq(a["d"])), ("g", g)]
    return kw + _torch_post(a)


def _torch_conv(ins, out, a) -> Torch:
    kw = _torch_conv_kw(ins, a, a["g"])
    if a.get("w") is not None:
        vals, shape = list(a["w"].values), a["w"].shape
        for d in reversed(shape[1:]):  # the kernel as written: nested lists of its shape
            vals = [vals[i:i + d] for i in range(0, len(vals), d)]
        kw.append(("fixed", vals))
    return Torch("Conv", (("c_in", ins[0][2]), ("n", a["n"]), ("f", _sq(a["f"]))), tuple(kw))


register(LayerKind(
    name="conv",
    lifts=("Conv", "MatMul"),
    lift=_lift_conv,
    window="f",
    doc="2-D convolution: n filters of f x f x C_in/g, stride s, padding p",
    params={**_CONV_COMMON, "n": Param(p_int(), REQUIRED, "number of filters n"), "g": Param(p_int(), 1, "groups"),
            "w": _CONV_W},
    positional=("n",),
    infer=_conv_infer,
    weights=_conv_weights,
    macs=_conv_macs,
    lower=_lower_conv,
    pytorch=_torch_conv,
    label=lambda a: _conv_label("conv", a, f"n={a['n']}" + (f", g={a['g']}" if a["g"] != 1 else "")
                                + (f", w={a['w'].text}" if a.get("w") is not None else "")),
    group="conv",
))


def _dw_infer(ins, a) -> Shape:
    ho, wo, c, _ = _window(ins, a, "dwconv")
    return (ho, wo, c * a["m"])


def _dw_weights(ins, out, a, prefix: str = "") -> list[Weight]:
    c, (fh, fw), m = ins[0][2], a["f"], a["m"]
    ws = [Weight(f"{prefix}weight", (c * m, 1, fh, fw), HeUniform(fh * fw))]
    if a["bias"]:
        ws.append(Weight(f"{prefix}bias", (c * m,), ZEROS))
    return ws + (bn_weights(c * m, f"{prefix}bn") if a["bn"] else [])


def _dw_macs(ins, out, a) -> int:
    (fh, fw) = a["f"]
    return fh * fw * out[0] * out[1] * out[2]


def _emit_dw(ctx, node, x, y, ins, a, prefix: str = "", shape: Shape | None = None) -> None:
    """The depthwise convolution (+ bn, act) from x to y; `shape` is y's when y is not the layer output."""
    h, w, c = ins[0]
    inputs = [x, f"{node}.{prefix}weight"] + ([f"{node}.{prefix}bias"] if a["bias"] else [])
    pre = y if not (a["bn"] or a["act"] != "none") else ctx.tmp(f"{prefix}conv", shape)
    ctx.node(
        "Conv", inputs, [pre], kernel_shape=list(a["f"]), strides=list(a["s"]),
        pads=_onnx_pads(resolve_pads(h, w, a)), dilations=list(a["d"]), group=c,
    )
    emit_post(ctx, node, pre, y, a, bn=f"{node}.{prefix}bn", shape=shape)


register(LayerKind(
    name="dwconv",
    lifts=("Conv",),
    lift=_lift_dwconv,
    window="f",
    doc="depthwise convolution (MobileNet): one f x f filter per input channel (m per channel)",
    params={**_CONV_COMMON, "m": Param(p_int(), 1, "channel multiplier: filters per input channel")},
    infer=_dw_infer,
    weights=_dw_weights,
    macs=_dw_macs,
    lower=lambda ctx, node, ins, out, a: _emit_dw(ctx, node, ctx.input(0), ctx.output, ins, a),
    pytorch=lambda ins, out, a: Torch("Conv", (("c_in", ins[0][2]), ("n", out[2]), ("f", _sq(a["f"]))),
                                      tuple(_torch_conv_kw(ins, a, ins[0][2]))),
    label=lambda a: _conv_label("dwconv", a, f"m={a['m']}" if a["m"] != 1 else ""),
    group="conv",
))


def _sep_infer(ins, a) -> Shape:
    ho, wo, _, _ = _window(ins, a, "sepconv")
    return (ho, wo, a["n"])


def _sep_weights(ins, out, a) -> list[Weight]:
    c, n = ins[0][2], a["n"]
    ws = _dw_weights(ins, out, {**a, "m": 1}, "dw.")
    ws.append(Weight("pw.weight", (n, c, 1, 1), HeUniform(c)))
    if a["bias"]:
        ws.append(Weight("pw.bias", (n,), ZEROS))
    return ws + (bn_weights(n, "pw.bn") if a["bn"] else [])


def _lower_sep(ctx, node, ins, out, a) -> None:
    dw_shape = (out[0], out[1], ins[0][2])
    mid = ctx.tmp("dw", dw_shape)
    _emit_dw(ctx, node, ctx.input(0), mid, ins, {**a, "m": 1}, "dw.", dw_shape)
    pre = ctx.output if not (a["bn"] or a["act"] != "none") else ctx.tmp("pw")
    pw = [mid, f"{node}.pw.weight"] + ([f"{node}.pw.bias"] if a["bias"] else [])
    ctx.node("Conv", pw, [pre], kernel_shape=[1, 1])
    emit_post(ctx, node, pre, ctx.output, a, bn=f"{node}.pw.bn")


register(LayerKind(
    name="sepconv",
    window="f",
    doc="depthwise separable convolution: depthwise f x f, then pointwise 1x1 to n channels "
        "(bn and act, when set, follow each of the two)",
    params={**_CONV_COMMON, "n": Param(p_int(), REQUIRED, "number of pointwise filters n")},
    positional=("n",),
    infer=_sep_infer,
    weights=_sep_weights,
    macs=lambda ins, out, a: a["f"][0] * a["f"][1] * out[0] * out[1] * ins[0][2] + out[0] * out[1] * ins[0][2] * a["n"],
    lower=_lower_sep,
    pytorch=lambda ins, out, a: Torch("SepConv", (("c_in", ins[0][2]), ("n", a["n"]), ("f", _sq(a["f"]))),
                                      tuple(kv for kv in _torch_conv_kw(ins, a) if kv[0] != "g")),
    label=lambda a: _conv_label("sepconv", a, f"n={a['n']}"),
    group="conv",
))


def _deconv_infer(ins, a) -> Shape:
    h, w, c = need_3d(ins, "deconv")
    if a["p"] == "same":
        raise ShapeError("`deconv` does not take `p=same`",
                         help="give `p` as a number; the output is (n-1)*s - 2p + f + op")
    if c % a["g"] or a["n"] % a["g"]:
        raise ShapeError(f"`deconv g={a['g']}` needs channels divisible by {a['g']}, got {c} -> {a['n']}")
    top, left, bottom, right = a["p"]
    (fh, fw), (sh, sw), (dh, dw), (oh, ow) = a["f"], a["s"], a["d"], a["op"]
    if oh >= sh or ow >= sw:  # PyTorch also allows op < d; onnxruntime does not run that model
        raise ShapeError(f"`deconv` output padding op={_show(a['op'])} must be smaller than the stride "
                         f"s={_show(a['s'])}",
                         help="`op` adds up to s - 1 rows and columns; use a smaller `op` or a larger `s`")
    ho = (h - 1) * sh - top - bottom + dh * (fh - 1) + oh + 1
    wo = (w - 1) * sw - left - right + dw * (fw - 1) + ow + 1
    if ho < 1 or wo < 1:
        raise ShapeError(f"`deconv` padding {_show(a['p'][:2])} leaves no output from a {h}x{w} input")
    return (ho, wo, a["n"])


def _deconv_weights(ins, out, a) -> list[Weight]:
    c, (fh, fw), g, n = ins[0][2], a["f"], a["g"], a["n"]
    ws = [Weight("weight", (c, n // g, fh, fw), HeUniform(n // g * fh * fw))]
    if a["bias"]:
        ws.append(Weight("bias", (n,), ZEROS))
    return ws + (bn_weights(n) if a["bn"] else [])


def _lower_deconv(ctx, node, ins, out, a) -> None:
    inputs = [ctx.input(0), f"{node}.weight"] + ([f"{node}.bias"] if a["bias"] else [])
    pre = ctx.output if not (a["bn"] or a["act"] != "none") else ctx.tmp("deconv")
    ctx.node(
        "ConvTranspose", inputs, [pre], kernel_shape=list(a["f"]), strides=list(a["s"]),
        pads=_onnx_pads(a["p"]), dilations=list(a["d"]), group=a["g"], output_padding=list(a["op"]),
    )
    emit_post(ctx, node, pre, ctx.output, a)


def _torch_deconv(ins, out, a) -> Torch:
    top, left, bottom, right = a["p"]
    p = _sq((top, left)) if (top, left) == (bottom, right) else (top, left, bottom, right)
    kw = [("s", _sq(a["s"])), ("p", p), ("op", _sq(a["op"])), ("d", _sq(a["d"])), ("g", a["g"])]
    return Torch("Deconv", (("c_in", ins[0][2]), ("n", a["n"]), ("f", _sq(a["f"]))), tuple(kw + _torch_post(a)))


def _lift_deconv(v) -> Lifted | None:
    w = v.const(1)
    if w is None or w.ndim != 4:
        return None
    if v.attr("output_shape") is not None or v.attr("auto_pad", "NOTSET") != "NOTSET":
        raise Unliftable("a transposed conv given by output_shape or auto_pad")
    g = int(v.attr("group", 1))
    params = {**_lift_window(v, "deconv"), "n": w.shape[1] * g}
    if g != 1:
        params["g"] = g
    op = tuple(int(x) for x in v.attr("output_padding", [0, 0]))
    if any(op):
        params["op"] = op
    return _with_bias(v, params, w)


register(LayerKind(
    name="deconv",
    lifts=("ConvTranspose",),
    lift=_lift_deconv,
    window="f",
    doc="transposed convolution (a.k.a. deconvolution): out = (n - 1)s - 2p + d(f - 1) + op + 1",
    params={
        **_CONV_COMMON,
        "n": Param(p_int(), REQUIRED, "number of filters n"),
        "g": Param(p_int(), 1, "groups"),
        "op": Param(p_size2(0), 0, "output padding added to one side"),
    },
    positional=("n",),
    infer=_deconv_infer,
    weights=_deconv_weights,
    # every input pixel scatters an f x f x n/g patch (PyTorch/fvcore convention)
    macs=lambda ins, out, a: ins[0][0] * ins[0][1] * ins[0][2] * (a["n"] // a["g"]) * a["f"][0] * a["f"][1],
    lower=_lower_deconv,
    pytorch=_torch_deconv,
    label=lambda a: _conv_label("deconv", a, f"n={a['n']}"),
    group="conv",
))

# --- pooling -----------------------------------------------------------------------------------


def _pool_infer(ins, a) -> Shape:
    p, (fh, fw) = a["p"], a["f"]
    if p != "same" and (max(p[0], p[2]) >= fh or max(p[1], p[3]) >= fw):
        # a window wholly in the padding has nothing to pool; onnxruntime refuses such a model
        raise ShapeError(f"`pool` padding p={_show(p[:2])} must be smaller than the window f={_show(a['f'])}",
                         help=f"use at most p={max(fh - 1, 0)}x{max(fw - 1, 0)}, or `p=same`")
    ho, wo, c, _ = _window(ins, a, "pool", a["ceil"])
    return (ho, wo, c)


def _pool_pads(h: int, w: int, a: Attrs) -> tuple[list[int], int]:
    """ONNX pads and ceil_mode giving exactly PyTorch's (and onnxruntime's) ceil-mode windows.

    NOTE: ONNX shape inference counts ceil((n + p0 + p1 - f) / s) + 1 windows and, unlike onnxruntime, keeps
    a last window that starts in the right padding, so `check_model(full_check=True)` would reject the
    model. An axis whose ceil count equals its floor count gets the right padding that no window reaches
    trimmed; ceil_mode is set only when some axis really gains a window.
    """
    pads = list(resolve_pads(h, w, a))  # top, left, bottom, right
    if not a["ceil"]:
        return pads, 0
    axes = [(h, a["f"][0], a["s"][0], 0, 2), (w, a["f"][1], a["s"][1], 1, 3)]
    gain = [window_out(n, f, s, pads[i], pads[j], 1, True) > window_out(n, f, s, pads[i], pads[j])
            for n, f, s, i, j in axes]
    if not any(gain):
        return pads, 0
    trimmed = list(pads)
    for (n, f, s, i, j), gains in zip(axes, gain, strict=True):
        r = (n + pads[i] + pads[j] - f) % s
        if not gains and r:
            if r > trimmed[j]:  # cannot trim: pad the gaining axes instead (max pool exact, avg counts the pad)
                for (n2, f2, s2, i2, j2), g2 in zip(axes, gain, strict=True):
                    if g2:
                        o = window_out(n2, f2, s2, pads[i2], pads[j2], 1, True)
                        pads[j2] += (o - 1) * s2 + f2 - (n2 + pads[i2] + pads[j2])
                return pads, 0
            trimmed[j] -= r
    return trimmed, 1


def _lower_pool(ctx, node, ins, out, a) -> None:
    h, w, _ = ins[0]
    pads, ceil_mode = _pool_pads(h, w, a)
    kw = dict(kernel_shape=list(a["f"]), strides=list(a["s"]), pads=_onnx_pads(pads), ceil_mode=ceil_mode)
    if a["mode"] == "max":
        ctx.node("MaxPool", [ctx.input(0)], [ctx.output], **kw)
    else:  # PyTorch's default count_include_pad=True; count_pad=false: Keras' padding='same'
        ctx.node("AveragePool", [ctx.input(0)], [ctx.output], count_include_pad=int(a["count_pad"]), **kw)


def _torch_pool(ins, out, a) -> Torch:
    h, w, _ = ins[0]
    pads, ceil = _pool_pads(h, w, a)
    top, left, bottom, right = pads
    f = _sq(a["f"])
    uncounted = a["mode"] == "avg" and not a["count_pad"]
    if (top, left) == (bottom, right) and 2 * top <= a["f"][0] and 2 * left <= a["f"][1]:
        kw = [("stride", _sq(a["s"])), ("padding", _sq((top, left))), ("ceil_mode", bool(ceil))]
        kw += [("count_include_pad", False)] if uncounted else []
        return Torch("nn.MaxPool2d" if a["mode"] == "max" else "nn.AvgPool2d", (("f", f),), tuple(kw))
    # PyTorch pads at most half the window, and only symmetrically: the helper pads explicitly
    kw = (("s", _sq(a["s"])), ("p", (top, left, bottom, right)), ("ceil", bool(ceil))) + (
        (("count_pad", False),) if uncounted else ())
    return Torch("Pool", (("mode", a["mode"]), ("f", f)), kw)


def _pool_label(a: Attrs) -> str:
    a2 = {**a, "bn": False, "act": "none"}
    return _conv_label(f"{a['mode']} pool", a2) + (", ceil" if a["ceil"] else "") + (
        ", padding not counted" if a["mode"] == "avg" and not a["count_pad"] else "")


def _lift_pool(v) -> Lifted | None:
    params = _lift_window(v, "pool", dilations=False)
    if v.op == "AveragePool":
        params = {"mode": Sym("avg"), **params}
        if not v.attr("count_include_pad", 0) and params.get("p") not in (None, (0, 0)):
            params["count_pad"] = False  # the average of the pixels inside only (Keras' padding='same')
    if params["s"] == params["f"]:
        del params["s"]
    if v.attr("ceil_mode", 0):
        params["ceil"] = True
    return Lifted(params)


register(LayerKind(
    name="pool",
    lifts=("MaxPool", "AveragePool"),
    lift=_lift_pool,
    window="f",
    doc="max (default) or average pooling over f x f windows with stride s (default f); channels unchanged",
    params={
        "mode": Param(p_choice("max", "avg"), "max", "`max` or `avg`"),
        "f": Param(p_size2(), REQUIRED, "window size f"),
        "s": Param(p_size2(), None, "stride s (default: f)"),
        "p": Param(p_pad, 0, "padding p"),
        "ceil": Param(p_bool, False, "round the output size up (PyTorch ceil_mode)"),
        "count_pad": Param(p_bool, True, "avg: padding counts in each window's average (PyTorch's count_include_pad); "
                           "false: only the pixels inside (Keras' padding='same')"),
    },
    positional=("mode",),
    finalize=lambda a: a if a["s"] is not None else {**a, "s": a["f"]},
    infer=_pool_infer,
    lower=_lower_pool,
    pytorch=_torch_pool,
    label=_pool_label,
    group="pool",
))


def _gap_infer(ins, a) -> Shape:
    h, w, c = need_3d(ins, "gap")
    return (1, 1, c)


def _lift_gap(v) -> Lifted | None:
    if v.op == "ReduceMean":
        axes = v.attr("axes") if v.attr("axes") is not None else (v.const(1) if v.n_inputs > 1 else None)
        # keepdims=0 (`x.mean([2, 3])`) gives N x C: the same numbers, which `fc` reads as it reads 1x1xC
        if axes is None or len(v.in_shape(0)) != 3 or sorted(int(a) % 4 for a in axes) != [2, 3]:
            return None
    return Lifted({})


register(LayerKind(
    name="gap",
    lifts=("GlobalAveragePool", "ReduceMean"),
    lift=_lift_gap,
    doc="global average pooling: HxWxC -> 1x1xC",
    params={},
    infer=_gap_infer,
    lower=lambda ctx, node, ins, out, a: ctx.node("GlobalAveragePool", [ctx.input(0)], [ctx.output]),
    pytorch=lambda ins, out, a: Torch("nn.AdaptiveAvgPool2d", (("size", 1),)),
    label=lambda a: "global avg pool",
    group="pool",
))

# --- fully connected and reshaping -------------------------------------------------------------


def _lower_flatten(ctx, x: str, y: str) -> None:
    ctx.node("Flatten", [x], [y], axis=1)


def _lower_fc(ctx, node, ins, out, a) -> None:
    x = ctx.input(0)
    if len(ins[0]) == 3:  # the notes flatten the volume before the first FC layer
        flat = ctx.tmp("flat", (prod(ins[0]),))
        _lower_flatten(ctx, x, flat)
        x = flat
    pre = ctx.output if a["act"] == "none" else ctx.tmp("fc")
    inputs = [x, f"{node}.weight"] + ([f"{node}.bias"] if a["bias"] else [])
    ctx.node("Gemm", inputs, [pre], transB=1)
    emit_post(ctx, node, pre, ctx.output, a)


_TORCH_FN = {"relu": "torch.relu({})", "relu6": "F.relu6({})", "sigmoid": "torch.sigmoid({})",
             "tanh": "torch.tanh({})", "leakyrelu": "F.leaky_relu({}, {alpha})", "elu": "F.elu({})",
             "silu": "F.silu({})", "hardswish": "F.hardswish({})", "hardsigmoid": "F.hardsigmoid({})",
             "gelu": "F.gelu({})", "softmax": "torch.softmax({}, 1)"}


def _torch_fc(ins, out, a) -> Torch:
    call = "{m}({0}.flatten(1))" if len(ins[0]) == 3 else "{m}({0})"
    if a["act"] != "none":
        call = _TORCH_FN[a["act"]].replace("{}", call).replace("{alpha}", repr(float(a.get("alpha", 0.01))))
    kw = (("bias", a["bias"]),)
    return Torch("nn.Linear", (("c_in", prod(ins[0])), ("n", a["n"])), kw, call)


def _lift_fc(v) -> Lifted | None:
    """Gemm (Linear as the TorchScript exporter writes it) or MatMul with a constant [in, out] matrix."""
    if v.op == "Gemm":
        w = v.const(1)
        if w is None or v.attr("transA", 0) or v.attr("alpha", 1.0) != 1.0 or len(v.in_shape(0)) != 1:
            return None
        w = w if v.attr("transB", 0) else w.T
        b = v.const(2) if v.n_inputs > 2 else None
        if b is not None and (v.attr("beta", 1.0) != 1.0 or b.size != w.shape[0]):
            return None
        params = {"n": w.shape[0]}
        if b is None:
            params["bias"] = False
        return Lifted(params, {"weight": w, **({"bias": b.reshape(-1)} if b is not None else {})})
    w = v.const(1)
    if w is None or w.ndim != 2 or len(v.in_shape(0)) != 1:
        return None
    return Lifted({"n": w.shape[1], "bias": False}, {"weight": w.T})


register(LayerKind(
    name="fc",
    lifts=("Gemm", "MatMul"),
    lift=_lift_fc,
    doc="fully connected layer with n units; an HxWxC input is flattened first",
    params={
        "n": Param(p_int(), REQUIRED, "number of units n"),
        "bias": Param(p_bool, True, "learned bias"),
        "act": Param(p_act, "none", "activation"),
    },
    positional=("n",),
    infer=lambda ins, a: (a["n"],),
    weights=lambda ins, out, a: [Weight("weight", (a["n"], prod(ins[0])), HeUniform(prod(ins[0])))]
    + ([Weight("bias", (a["n"],), ZEROS)] if a["bias"] else []),
    macs=lambda ins, out, a: prod(ins[0]) * a["n"],
    lower=_lower_fc,
    pytorch=_torch_fc,
    label=lambda a: f"fc {a['n']}" + _act_suffix(a),
    group="fc",
))

def _lift_flatten(v) -> Lifted | None:
    if len(v.in_shape(0)) != 3 or len(v.out_shape) != 1:
        return None
    if v.op == "Flatten" and v.attr("axis", 1) != 1:
        return None
    return Lifted({})


register(LayerKind(
    name="flatten",
    lifts=("Flatten", "Reshape"),
    lift=_lift_flatten,
    doc="HxWxC -> a vector of H*W*C (in PyTorch's C, H, W order)",
    params={},
    infer=lambda ins, a: (prod(ins[0]),),
    lower=lambda ctx, node, ins, out, a: _lower_flatten(ctx, ctx.input(0), ctx.output),
    pytorch=lambda ins, out, a: Torch("nn.Flatten"),
    label=lambda a: "flatten",
    group="shape",
))

# --- normalisation and regularisation ----------------------------------------------------------


def _lower_bn(ctx, node, ins, out, a) -> None:
    emit_post(ctx, node, ctx.input(0), ctx.output, {"bn": True, "eps": a["eps"], "act": "none"}, bn=node)


def _affine_pattern(v) -> bool:
    """A BatchNormalization that is `affine`'s lowering: mean 0, variance 1, epsilon 0 (x * scale + shift)."""
    ws = [v.const(i) for i in range(1, 5)]
    return (all(w is not None for w in ws) and float(v.attr("epsilon", 1e-5)) == 0.0 and not ws[2].any()
            and bool((ws[3] == 1).all()))


def _short_floats(arr) -> list[float]:
    """float32 numbers as the shortest decimals that give them back (0.03, not 0.029999999329447746)."""
    import numpy as np

    return [float(np.format_float_positional(np.float32(x), unique=True, trim="-")) for x in arr.reshape(-1)]


def _one_or_all(vs: list[float]) -> list[float]:
    """`[0.5]` for the same number on every channel (`affine scale=[0.5]`), else one a channel."""
    return vs[:1] if len(set(vs)) == 1 else vs


def _lift_bn(v) -> Lifted | None:
    ws = [v.const(i) for i in range(1, 5)]
    if any(w is None for w in ws) or v.attr("training_mode", 0) or _affine_pattern(v):
        return None
    eps = float(v.attr("epsilon", 1e-5))
    params = {} if abs(eps - 1e-5) < 1e-12 else {"eps": eps}
    return Lifted(params, dict(zip(("scale", "bias", "mean", "var"), ws, strict=True)))


register(LayerKind(
    name="bn",
    lifts=("BatchNormalization",),
    lift=_lift_bn,
    doc="batch normalisation: 2C learned (scale, shift) + 2C running statistics (non-trainable)",
    params={"eps": Param(p_float(0.0), 1e-5, "epsilon")},
    infer=lambda ins, a: ins[0],
    weights=lambda ins, out, a: bn_weights(ins[0][-1], ""),
    lower=_lower_bn,
    pytorch=lambda ins, out, a: Torch("BatchNorm", (("c", ins[0][-1]),), (("eps", a["eps"]),)),
    label=lambda a: "batch norm",
    group="norm",
))

register(LayerKind(
    name="lrn",
    lifts=("LRN",),
    lift=lambda v: Lifted({"size": int(v.attr("size")), "alpha": float(v.attr("alpha", 1e-4)),
                           "beta": float(v.attr("beta", 0.75)), "k": float(v.attr("bias", 1.0))}),
    doc="local response normalisation across channels (AlexNet): size, alpha, beta, k",
    params={
        "size": Param(p_odd, 5, "channels in the window (odd: it is centred on each channel)"),
        "alpha": Param(p_float(), 1e-4, "alpha"),
        "beta": Param(p_float(), 0.75, "beta"),
        "k": Param(p_float(), 2.0, "k (bias)"),
    },
    infer=lambda ins, a: need_3d(ins, "lrn"),
    lower=lambda ctx, node, ins, out, a: ctx.node(
        "LRN", [ctx.input(0)], [ctx.output], size=a["size"], alpha=a["alpha"], beta=a["beta"], bias=a["k"]
    ),
    label=lambda a: f"LRN {a['size']}",
    pytorch=lambda ins, out, a: Torch("nn.LocalResponseNorm", (("size", a["size"]),),
                                      (("alpha", a["alpha"]), ("beta", a["beta"]), ("k", a["k"]))),
    group="norm",
))

register(LayerKind(
    name="dropout",
    doc="dropout with the given rate (training only; an identity at inference)",
    params={"rate": Param(p_float(0.0, 1.0), 0.5, "drop probability")},
    positional=("rate",),
    infer=lambda ins, a: ins[0],
    lower=lambda ctx, node, ins, out, a: ctx.alias(ctx.input(0)),
    label=lambda a: f"dropout {a['rate']:g}",
    pytorch=lambda ins, out, a: Torch("nn.Dropout", (("p", a["rate"]),)),
    group="regularization",
))

register(LayerKind(
    name="identity",
    doc="passes its input through unchanged (e.g. the plain branch of `add { identity | ... }`)",
    params={},
    infer=lambda ins, a: ins[0],
    lower=lambda ctx, node, ins, out, a: ctx.alias(ctx.input(0)),
    label=lambda a: "identity",
    pytorch=lambda ins, out, a: Torch("nn.Identity"),
    group="shape",
))

def p_floats(v: Any) -> tuple[float, ...]:
    """`[0.5, -0.03, 1]`: a list of numbers, one per channel."""
    if not isinstance(v, list) or not v or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
        raise ParamError(f"expected a list of numbers such as `[0.5, 0.5, 0.5]`, got `{_show(v)}`")
    return tuple(float(x) for x in v)


def _affine_infer(ins, a) -> Shape:
    c = ins[0][-1]
    for key in ("scale", "shift"):
        if len(a[key]) not in (1, c):
            raise ShapeError(f"`affine {key}=` gives {len(a[key])} numbers for {c} channels",
                             help=f"give one number per channel ({c}), or one for all")
    return ins[0]


def _lower_affine(ctx, node, ins, out, a) -> None:
    c = ins[0][-1]
    # NOTE: batch norm with mean 0, variance 1 and epsilon 0 is exactly scale * x + shift, per channel, with 1-D
    # constants that broadcast over N x C x H x W and N x C alike
    full = lambda v: list(v) * c if len(v) == 1 else list(v)  # noqa: E731
    ctx.node("BatchNormalization", [ctx.input(0), ctx.const("factor", full(a["scale"])), ctx.const("offset", full(
        a["shift"])), ctx.const("zero_mean", [0.0] * c), ctx.const("unit_var", [1.0] * c)], [ctx.output], epsilon=0.0)


register(LayerKind(
    name="affine",
    doc="a fixed per-channel rescaling x * scale + shift, not trained (torchvision's `transform_input`)",
    params={"scale": Param(p_floats, [1], "multipliers: one per channel, or one for all"),
            "shift": Param(p_floats, [0], "offsets: one per channel, or one for all")},
    infer=_affine_infer,
    lower=_lower_affine,
    label=lambda a: "affine x*scale+shift",
    pytorch=lambda ins, out, a: Torch("Affine", (("scale", list(a["scale"])), ("shift", list(a["shift"])))),
    lifts=("BatchNormalization",),
    lift=lambda v: Lifted({"scale": _one_or_all(_short_floats(v.const(1))), "shift": _one_or_all(_short_floats(
        v.const(2)))}) if _affine_pattern(v) else None,
    group="norm",
))

# --- activations as layers ---------------------------------------------------------------------


for _act in ACTIVATIONS.values():
    register(LayerKind(
        name=_act.name,
        doc=_act.doc,
        params=_act.params,
        positional=tuple(_act.params)[:1],  # `leakyrelu(0.1)`, as `act=leakyrelu(0.1)` writes it
        lifts=_act.lifts,
        lift=_act.lift,
        infer=lambda ins, a: ins[0],
        lower=lambda ctx, node, ins, out, a, _name=_act.name: _lower_act(ctx, _name, ctx.input(0), ctx.output, a),
        label=lambda a, _name=_act.name: Act(_name, a).label(),
        pytorch=lambda ins, out, a, _name=_act.name: torch_act(_name, a, a.get("inplace", False)),
        group="act",
    ))

def _prelu_slope_shape(shape: Shape) -> tuple[int, ...]:
    # ONNX broadcasts the slope against NCHW from the right: C x 1 x 1 for a volume, F for a vector
    return (shape[2], 1, 1) if len(shape) == 3 else (shape[0],)


register(LayerKind(
    name="prelu",
    lifts=("PRelu",),
    lift=lambda v: Lifted({}, {"slope": v.const(1)}) if v.const(1) is not None and v.const(1).size == (
        v.in_shape(0)[-1]) else None,
    doc="parametric ReLU: x if x > 0 else a * x, with a learnable slope a per channel (He et al. 2015)",
    params={"init": Param(p_float(), 0.25, "the slopes' initial value")},
    infer=lambda ins, a: ins[0],
    weights=lambda ins, out, a: [Weight("slope", _prelu_slope_shape(ins[0]), Const(a["init"]))],
    lower=lambda ctx, node, ins, out, a: ctx.node("PRelu", [ctx.input(0), f"{node}.slope"], [ctx.output]),
    label=lambda a: "prelu",
    pytorch=lambda ins, out, a: Torch("PReLU", (("c", ins[0][-1]),),
                                      (("init", a["init"]), ("volume", len(ins[0]) == 3))),
    group="act",
))

# --- modern classifiers: ConvNeXt, ShuffleNet-v2, torchvision's adaptive pooling (issue #11) ---------


def _per_channel(shape: Shape) -> tuple[int, ...]:
    """A per-channel weight that ONNX broadcasts against NCHW (C x 1 x 1) or [N, F] (F)."""
    return (shape[2], 1, 1) if len(shape) == 3 else (shape[0],)


def _lower_layernorm(ctx, node, ins, out, a) -> None:
    w = [f"{node}.scale", f"{node}.bias"]
    if len(ins[0]) == 1:
        ctx.node("LayerNormalization", [ctx.input(0), *w], [ctx.output], axis=-1, epsilon=a["eps"])
        return
    h, wd, c = ins[0]
    nhwc, normed = ctx.tensor("nhwc", ["N", h, wd, c]), ctx.tensor("normed", ["N", h, wd, c])
    ctx.node("Transpose", [ctx.input(0)], [nhwc], perm=[0, 2, 3, 1])
    ctx.node("LayerNormalization", [nhwc, *w], [normed], axis=-1, epsilon=a["eps"])
    ctx.node("Transpose", [normed], [ctx.output], perm=[0, 3, 1, 2])


def _lift_layernorm(v) -> Lifted | None:
    """LayerNormalization over the last axis of a vector or of a channels-last view (PyTorch's LayerNorm2d
    between its permutes: the Transposes are views, cnndsl.onnx_import follows them)."""
    shape = v.in_shape(0)
    rank = len(v.dims(0) or ())
    if int(v.attr("axis", -1)) % max(rank, 1) != rank - 1 or (len(shape) == 3 and not v.channels_last(0)):
        return None
    c = shape[-1]
    scale = v.const(1)
    bias = v.const(2) if v.n_inputs > 2 and v.input_name(2) else __import__("numpy").zeros(c, "float32")
    if scale is None or bias is None or scale.size != c or bias.size != c:
        return None
    eps = float(f'{float(v.attr("epsilon", 1e-5)):.7g}')  # a float32 attribute: 1e-6, not 9.999999975e-07
    return Lifted({} if abs(eps - 1e-5) < 1e-12 else {"eps": eps}, {"scale": scale, "bias": bias})


register(LayerKind(
    name="layernorm",
    pytorch=lambda ins, out, a: Torch("LayerNorm", (("c", ins[0][-1]),), (("eps", a["eps"]),)),
    lifts=("LayerNormalization",),
    lift=_lift_layernorm,
    doc="layer normalisation over the channels at each position (ConvNeXt's LayerNorm2d, and nn.LayerNorm "
        "on channels-last or on a vector): 2C learned (scale, shift)",
    params={"eps": Param(p_float(0.0), 1e-5, "epsilon (ConvNeXt: 1e-6)")},
    infer=lambda ins, a: ins[0],
    weights=lambda ins, out, a: [Weight("scale", (ins[0][-1],), ONES), Weight("bias", (ins[0][-1],), ZEROS)],
    lower=_lower_layernorm,
    label=lambda a: "layer norm",
    group="norm",
))

def _lift_layerscale(v) -> Lifted | None:
    """Mul by a constant with one factor per channel (C x 1 x 1 on NCHW, C on a vector or channels-last)."""
    for i in (0, 1):
        w = v.const(1 - i)
        if w is None or v.const(i) is not None:
            continue
        shape = v.in_shape(i)
        c = shape[-1]
        dims = tuple(int(d) for d in w.shape)
        while dims and dims[0] == 1 and len(dims) > 1:
            dims = dims[1:]
        per_c = (c,) if len(shape) == 1 or v.channels_last(i) else (c, 1, 1)
        if dims == per_c and w.size == c and c > 1:
            return Lifted({}, {"scale": w.reshape(-1)}, inputs=(i,))
    return None


register(LayerKind(
    name="layerscale",
    pytorch=lambda ins, out, a: Torch("LayerScale", (("c", ins[0][-1]),),
                                      (("init", a["init"]), ("volume", len(ins[0]) == 3))),
    lifts=("Mul",),
    lift=_lift_layerscale,
    doc="multiplies each channel by a learned factor (ConvNeXt's layer scale, CaiT): C parameters",
    params={"init": Param(p_float(), 1e-6, "the factors' initial value")},
    infer=lambda ins, a: ins[0],
    weights=lambda ins, out, a: [Weight("scale", _per_channel(ins[0]), Const(a["init"]))],
    lower=lambda ctx, node, ins, out, a: ctx.node("Mul", [ctx.input(0), f"{node}.scale"], [ctx.output]),
    label=lambda a: "layer scale",
    group="norm",
))

register(LayerKind(
    name="droppath",
    pytorch=lambda ins, out, a: Torch("DropPath", (("rate", a["rate"]),)),
    doc="stochastic depth: drops a residual branch while training (rate); an identity at inference",
    params={"rate": Param(p_float(0.0, 1.0), 0.0, "drop probability")},
    positional=("rate",),
    infer=lambda ins, a: ins[0],
    lower=lambda ctx, node, ins, out, a: ctx.alias(ctx.input(0)),
    label=lambda a: f"drop path {a['rate']:g}",
    group="regularization",
))


def _split_infer(ins, a) -> Shape:
    c, k, i = ins[0][-1], a["of"], a["part"]
    if i >= k:
        raise ShapeError(f"`split {i} of={k}` asks for part {i} of {k}; the parts are numbered 0 to {k - 1}",
                         help=f"use `split {k - 1} of={k}` for the last part")
    if c % k:
        raise ShapeError(f"`split of={k}` cannot cut {c} channels into {k} equal parts",
                         help=f"use a divisor of {c} for `of`")
    return (*ins[0][:-1], c // k)


def _lower_split(ctx, node, ins, out, a) -> None:
    part = ins[0][-1] // a["of"]
    i64 = dict(dtype=__import__("numpy").int64)
    ctx.node("Slice", [ctx.input(0), ctx.const("starts", [a["part"] * part], **i64),
                       ctx.const("ends", [(a["part"] + 1) * part], **i64), ctx.const("axes", [1], **i64)],
             [ctx.output])


def _lift_split(v) -> Lifted | None:
    """Slice of one of k equal channel groups (step 1 along the channel axis)."""
    starts, ends, axes = v.const(1), v.const(2), v.const(3) if v.n_inputs > 3 else None
    steps = v.const(4) if v.n_inputs > 4 else None
    shape, rank = v.in_shape(0), len(v.dims(0) or ())
    if starts is None or ends is None or axes is None or starts.size != 1 or ends.size != 1 or axes.size != 1:
        return None
    if steps is not None and int(steps.reshape(-1)[0]) != 1:
        return None
    if v.channels_last(0) or int(axes.reshape(-1)[0]) % max(rank, 1) != 1:
        return None
    c = shape[-1]
    lo, hi = (max(0, min(int(t.reshape(-1)[0]) + (c if int(t.reshape(-1)[0]) < 0 else 0), c)) for t in (starts, ends))
    part = hi - lo
    if part <= 0 or c % part or lo % part:
        return None
    params = {"part": lo // part}
    if c // part != 2:
        params["of"] = c // part
    return Lifted(params)


register(LayerKind(
    name="split",
    pytorch=lambda ins, out, a: Torch("Split", (("part", a["part"]), ("of", a["of"]))),
    lifts=("Slice",),
    lift=_lift_split,
    doc="one of `of` equal channel groups, numbered from 0 (ShuffleNet-v2's channel split: "
        "`concat { split 0 | split 1 -> ... }`)",
    params={"part": Param(p_int(0), REQUIRED, "which part, from 0"),
            "of": Param(p_int(1), 2, "number of equal parts")},
    positional=("part",),
    infer=_split_infer,
    lower=_lower_split,
    label=lambda a: f"split {a['part']}/{a['of']}",
    group="shape",
))


def _shuffle_infer(ins, a) -> Shape:
    h, w, c = need_3d(ins, "shuffle")
    if c % a["g"]:
        raise ShapeError(f"`shuffle g={a['g']}` needs channels divisible by {a['g']}, got {c}",
                         help=f"use a divisor of {c} for `g`")
    return ins[0]


def _shuffle_order(c: int, g: int) -> list[int]:
    """The input channel at each output position: output j*g + i is input i*(C/g) + j."""
    return [i * (c // g) + j for j in range(c // g) for i in range(g)]


def _lower_shuffle(ctx, node, ins, out, a) -> None:
    import numpy as np

    order = ctx.const("order", _shuffle_order(ins[0][-1], a["g"]), dtype=np.int64)
    ctx.node("Gather", [ctx.input(0), order], [ctx.output], axis=1)


def _lift_shuffle_gather(v) -> Lifted | None:
    order = v.const(1)
    if order is None or int(v.attr("axis", 0)) != 1 or len(v.in_shape(0)) != 3:
        return None
    c, got = v.in_shape(0)[-1], [int(x) for x in order.ravel()]
    for g in range(1, c + 1):
        if c % g == 0 and got == _shuffle_order(c, g):
            return Lifted({"g": g})
    raise Unliftable("a channel Gather that is not a channel shuffle")


def _lift_shuffle(v) -> Lifted | None:
    """cnndsl's own lowering (a channel Gather), or PyTorch's channel_shuffle as its exporters write it."""
    return _lift_shuffle_gather(v) if v.op == "Gather" else _lift_shuffle_pattern(v)


def _lift_shuffle_pattern(v) -> Lifted | None:
    """Reshape(N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape(N, C, H, W), lifted at the last."""
    t = v.producer(0)
    if t is None or t.op != "Transpose" or [int(p) for p in t.attr("perm", [])] != [0, 2, 1, 3, 4]:
        return None
    r = t.producer(0)
    d5 = t.dims(0)
    if r is None or r.op != "Reshape" or not d5 or len(d5) != 5 or None in d5[1:]:
        return None
    out = v.out_shape
    x = r.input_name(0)
    d4 = r.dims(0)
    if len(out) != 3 or not d4 or len(d4) != 4 or tuple(d4[1:]) != (out[2], out[0], out[1]):
        return None
    g = int(d5[1])
    if d5[1] * d5[2] != out[2] or tuple(d5[3:]) != out[:2] or not (t.sole_consumer and r.sole_consumer):
        return None
    return Lifted({} if g == 2 else {"g": g}, absorbs=[t, r], inputs=(x,))


register(LayerKind(
    name="shuffle",
    pytorch=lambda ins, out, a: Torch("Shuffle", (("g", a["g"]),)),
    lifts=("Gather", "Reshape"),
    lift=_lift_shuffle,
    doc="channel shuffle (ShuffleNet): the C channels seen as g groups of C/g, transposed, so that channel "
        "j of group i moves to position j*g + i",
    params={"g": Param(p_int(), 2, "number of groups g")},
    positional=("g",),
    infer=_shuffle_infer,
    lower=_lower_shuffle,
    label=lambda a: f"shuffle g={a['g']}",
    group="shape",
))


def adaptive_bins(n: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: [floor(i n / out), ceil((i + 1) n / out))."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def _lower_adaptivepool(ctx, node, ins, out, a) -> None:
    h, w, c = ins[0]
    oh, ow = a["out"]
    if (h, w) == (oh, ow):  # torchvision's AlexNet and VGG at 224: nothing to average
        ctx.node("Identity", [ctx.input(0)], [ctx.output])
    elif h % oh == 0 and w % ow == 0:  # equal windows that tile the input: a plain average pool
        k = [h // oh, w // ow]
        ctx.node("AveragePool", [ctx.input(0)], [ctx.output], kernel_shape=k, strides=k)
    else:  # uneven or overlapping windows: each window's mean along W, then along H (exact, any size)
        import numpy as np

        x = ctx.input(0)
        for axis, n, o, dims in ((3, w, ow, (h, ow, c)), (2, h, oh, (oh, ow, c))):
            ax = ctx.const(f"axis{axis}", [axis], dtype=np.int64)
            parts = []
            for i, (lo, hi) in enumerate(adaptive_bins(n, o)):
                cut = ctx.tmp(f"cut{axis}_{i}", (h, hi - lo, c) if axis == 3 else (hi - lo, ow, c))
                mean = ctx.tmp(f"mean{axis}_{i}", (h, 1, c) if axis == 3 else (1, ow, c))
                ctx.node("Slice", [x, ctx.const(f"lo{lo}", [lo], dtype=np.int64),
                                   ctx.const(f"hi{hi}", [hi], dtype=np.int64), ax], [cut])
                ctx.node("ReduceMean", [cut, ax], [mean], keepdims=1)
                parts.append(mean)
            y = ctx.output if axis == 2 else ctx.tmp("cols", dims)
            ctx.node("Concat", parts, [y], axis=axis)
            x = y


def _adaptive_pass(v, axis: int):
    """A Concat along `axis` of ReduceMean(Slice(x)) over PyTorch's adaptive windows: (x's name, bins, nodes)."""
    if int(v.attr("axis", 0)) % 4 != axis:
        return None
    src, bins, nodes = None, [], []
    for i in range(v.n_inputs):
        mean = v.producer(i)
        cut = mean.producer(0) if mean is not None and mean.op == "ReduceMean" else None
        if cut is None or cut.op != "Slice" or not (mean.sole_consumer and cut.sole_consumer):
            return None
        ax = cut.const(3) if cut.n_inputs > 3 else None
        lo, hi = cut.const(1), cut.const(2)
        if ax is None or lo is None or hi is None or int(ax.reshape(-1)[0]) % 4 != axis:
            return None
        if src not in (None, cut.input_name(0)):
            return None
        src = cut.input_name(0)
        bins.append((int(lo.reshape(-1)[0]), int(hi.reshape(-1)[0])))
        nodes += [mean, cut]
    return src, bins, nodes


def _lift_adaptivepool(v) -> Lifted | None:
    """cnndsl's own lowering of uneven adaptive windows: means of slices along W, concatenated, then along H."""
    rows = _adaptive_pass(v, 2)
    cols_node = v.producer(0)
    cols_node = cols_node.producer(0) if cols_node is not None else None
    cols_node = cols_node.producer(0) if cols_node is not None else None
    if rows is None or cols_node is None or cols_node.op != "Concat" or rows[0] != cols_node.node.output[0]:
        return None
    cols = _adaptive_pass(cols_node, 3)
    if cols is None:
        return None
    x = cols[0]
    h, w, _ = cols_node.producer(0).producer(0).in_shape(0)
    oh, ow = len(rows[1]), len(cols[1])
    if rows[1] != adaptive_bins(h, oh) or cols[1] != adaptive_bins(w, ow):
        return None
    return Lifted({"out": (oh, ow)}, absorbs=rows[2] + [cols_node] + cols[2], inputs=(x,))


register(LayerKind(
    name="adaptivepool",
    pytorch=lambda ins, out, a: Torch("nn.AdaptiveAvgPool2d", (("output_size", tuple(a["out"])),)),
    lifts=("Concat",),
    lift=_lift_adaptivepool,
    window="out",
    doc="adaptive average pooling to a fixed out_h x out_w (PyTorch's AdaptiveAvgPool2d): window i along "
        "an axis of n covers [floor(i n/out), ceil((i+1) n/out)); any input size, channels unchanged",
    params={"out": Param(p_size2(), REQUIRED, "output size H x W")},
    positional=("out",),
    infer=lambda ins, a: (*a["out"], need_3d(ins, "adaptivepool")[2]),
    lower=_lower_adaptivepool,
    label=lambda a: f"adaptive avg pool to {a['out'][0]}x{a['out'][1]}",
    group="pool",
))

# --- merges ------------------------------------------------------------------------------------


def _concat_infer(ins, a) -> Shape:
    ranks = {len(s) for s in ins}
    if ranks == {1}:
        return (sum(s[0] for s in ins),)
    if ranks != {3}:
        raise ShapeError("`concat` cannot join volumes and vectors: " + ", ".join(fmt_shape(s) for s in ins))
    hw = {s[:2] for s in ins}
    if len(hw) > 1:
        hs, ws = {h for h, _ in hw}, {w for _, w in hw}
        if max(hs) - min(hs) <= 1 and max(ws) - min(ws) <= 1:
            # a skip connection around a down- and upsampling path: an odd size halved rounds down
            help_ = ("the sizes differ by one pixel: a stride-2 layer on an odd size rounds down, and doubling "
                     "it again comes back one short; use an input that stays even at every downsampling "
                     "(a multiple of 16 for four)")
        else:
            help_ = "give every branch the same stride and `p=same` padding"
        raise ShapeError("`concat` inputs must agree in H x W, got " + ", ".join(fmt_shape(s) for s in ins),
                         help=help_)
    return (*ins[0][:2], sum(s[2] for s in ins))


def _add_infer(ins, a) -> Shape:
    if len({tuple(s) for s in ins}) == 1:
        return ins[0]
    raise ShapeError("`add` inputs must have equal shapes, got " + ", ".join(fmt_shape(s) for s in ins))


def _mul_infer(ins, a) -> Shape:
    full = max(ins, key=lambda s: math.prod(s))
    for s in ins:
        if s == full:
            continue
        if len(s) == 3 and len(full) == 3 and s[:2] == (1, 1) and s[2] == full[2]:
            continue  # channel-wise scaling, as in squeeze-and-excitation
        raise ShapeError(
            "`mul` inputs must have equal shapes or be 1x1xC gates, got " + ", ".join(fmt_shape(x) for x in ins)
        )
    return full


def _lift_merge(v) -> Lifted | None:
    """Add or Mul of computed tensors (a constant operand is a bias or a scale, not a merge)."""
    if v.n_inputs != 2 or any(v.const(i) is not None for i in range(2)):
        return None
    return Lifted({}, inputs=(0, 1))


def _lower_nary(op: str, **kw):
    def lower(ctx, node, ins, out, a) -> None:
        xs = [ctx.input(i) for i in range(len(ins))]
        if op == "Concat" or len(xs) == 2:
            ctx.node(op, xs, [ctx.output], **kw)
        else:  # Add/Mul are binary in ONNX: fold left
            cur = xs[0]
            for i, x in enumerate(xs[1:]):
                # a partial product of 1x1xC gates is itself a gate, not the full shape
                partial = max(ins[: i + 2], key=math.prod)
                nxt = ctx.output if i == len(xs) - 2 else ctx.tmp(op.lower(), partial)
                ctx.node(op, [cur, x], [nxt])
                cur = nxt

    return lower


register(LayerKind(
    name="concat",
    lifts=("Concat",),
    lift=lambda v: Lifted({}, inputs=tuple(range(v.n_inputs)))
    if int(v.attr("axis")) % (len(v.in_shape(0)) + 1) == 1 else None,
    doc="channel concatenation of its inputs (equal H x W), in order",
    params={},
    infer=_concat_infer,
    lower=_lower_nary("Concat", axis=1),  # channels in NCHW, features in [N, F]
    pytorch=lambda ins, out, a: Torch(None, call="cat"),
    label=lambda a: "concat",
    symbol="‖",
    arity=(1, None),
    group="merge",
))

register(LayerKind(
    name="add",
    lifts=("Add",),
    lift=_lift_merge,
    doc="element-wise sum of equal-shaped inputs (residual connections)",
    params={},
    infer=_add_infer,
    lower=_lower_nary("Add"),
    pytorch=lambda ins, out, a: Torch(None, call="+"),
    label=lambda a: "add",
    symbol="⊕",
    arity=(2, None),
    group="merge",
))

register(LayerKind(
    name="mul",
    lifts=("Mul",),
    lift=_lift_merge,
    doc="element-wise product; a 1x1xC input scales channels (squeeze-and-excitation)",
    params={},
    infer=_mul_infer,
    lower=_lower_nary("Mul"),
    pytorch=lambda ins, out, a: Torch(None, call="*"),
    label=lambda a: "mul",
    symbol="⊗",
    arity=(2, None),
    group="merge",
))

# --- resampling --------------------------------------------------------------------------------


def _lower_upsample(ctx, node, ins, out, a) -> None:
    scales = ctx.const("scales", [1.0, 1.0, float(a["scale"]), float(a["scale"])])
    mode = "nearest" if a["mode"] == "nearest" else "linear"
    extra = {"nearest_mode": "floor", "coordinate_transformation_mode": "asymmetric"} if mode == "nearest" else {
        "coordinate_transformation_mode": "half_pixel"}
    ctx.node("Resize", [ctx.input(0), "", scales], [ctx.output], mode=mode, **extra)


def _lift_upsample(v) -> Lifted | None:
    scales = v.const(2) if v.op == "Resize" and v.n_inputs > 2 else v.const(1)
    if scales is None or scales.size != 4 or v.op == "Resize" and v.n_inputs > 3 and v.input_name(3):
        sizes = v.out_shape[:2] if len(v.out_shape) == 3 else None
        h, w = v.in_shape(0)[:2]
        if sizes is None or sizes[0] % h or sizes[1] % w:
            return None
        scales = [1, 1, sizes[0] / h, sizes[1] / w]
    k = float(scales[2])
    if float(scales[3]) != k or not k.is_integer() or float(scales[0]) != 1 or float(scales[1]) != 1:
        return None
    mode, coords = v.attr("mode", "nearest"), v.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":  # an integer factor picks the same pixels under every coordinate convention
        return Lifted({"scale": int(k)})
    if mode == "linear" and coords in ("half_pixel", "pytorch_half_pixel"):
        return Lifted({"scale": int(k), "mode": Sym("bilinear")})
    return None


register(LayerKind(
    name="upsample",
    lifts=("Resize", "Upsample"),
    lift=_lift_upsample,
    doc="spatial upsampling by an integer factor (nearest or bilinear); channels unchanged",
    params={
        "scale": Param(p_int(), 2, "factor"),
        "mode": Param(p_choice("nearest", "bilinear"), "nearest", "interpolation"),
    },
    positional=("scale",),
    infer=lambda ins, a: (lambda h, w, c: (h * a["scale"], w * a["scale"], c))(*need_3d(ins, "upsample")),
    lower=_lower_upsample,
    pytorch=lambda ins, out, a: Torch("nn.Upsample", kwargs=(("scale_factor", a["scale"]), ("mode", a["mode"]))),
    label=lambda a: f"upsample x{a['scale']}" + (", bilinear" if a["mode"] != "nearest" else ""),
    group="shape",
))



def pad_sides(a: Attrs) -> tuple[int, int, int, int]:
    """(top, left, bottom, right): each side as given, else from `p` (a number or HxW), else 0."""
    ph, pw = a["p"] if a["p"] is not None else (0, 0)
    side = lambda k, d: d if a[k] is None else a[k]  # noqa: E731
    return side("top", ph), side("left", pw), side("bottom", ph), side("right", pw)


def _pad_infer(ins, a) -> Shape:
    h, w, c = need_3d(ins, "pad")
    top, left, bottom, right = pad_sides(a)
    return (h + top + bottom, w + left + right, c)


def _lower_pad(ctx, node, ins, out, a) -> None:
    import numpy as np

    top, left, bottom, right = pad_sides(a)
    pads = ctx.const("pads", [0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)
    ctx.node("Pad", [ctx.input(0), pads], [ctx.output], mode="constant")


def _lift_pad(v) -> Lifted | None:
    """A constant Pad of zeros on H and W only (Keras' ZeroPadding2D, PyTorch's nn.ZeroPad2d)."""
    pads = v.const(1) if v.n_inputs > 1 else (v.attr("pads") and __import__("numpy").array(v.attr("pads")))
    value = v.const(2) if v.n_inputs > 2 and v.input_name(2) else None
    if v.attr("mode", "constant") != "constant" or pads is None or len(v.in_shape(0)) != 3:
        return None
    pads = [int(x) for x in pads.reshape(-1)]
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        raise Unliftable("a Pad of the batch or channel axis")
    if min(pads) < 0:
        raise Unliftable("a Pad that crops (negative pads)")
    if value is not None and value.size and float(value.reshape(-1)[0]) != 0.0:
        raise Unliftable("a Pad with a value other than zero")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    if (top, left) == (bottom, right):
        return Lifted({"p": (top, left)})
    sides = {"top": top, "bottom": bottom, "left": left, "right": right}
    return Lifted({k: x for k, x in sides.items() if x})


def _pad_label(a: Attrs) -> str:
    top, left, bottom, right = pad_sides(a)
    if (top, left) == (bottom, right):
        return f"zero pad {_show((top, left)) if top != left else top}"
    return f"zero pad top {top}, bottom {bottom}, left {left}, right {right}"


register(LayerKind(
    name="pad",
    lifts=("Pad",),
    lift=_lift_pad,
    doc="zero padding: p on every side (a number or HxW), or top=/bottom=/left=/right= each "
        "(Keras' ZeroPadding2D, PyTorch's nn.ZeroPad2d)",
    params={
        "p": Param(p_size2(0), None, "rows above and below, columns left and right: a number or HxW"),
        "top": Param(p_int(0), None, "rows above (default: from p, else 0)"),
        "bottom": Param(p_int(0), None, "rows below (default: from p, else 0)"),
        "left": Param(p_int(0), None, "columns on the left (default: from p, else 0)"),
        "right": Param(p_int(0), None, "columns on the right (default: from p, else 0)"),
    },
    positional=("p",),
    infer=_pad_infer,
    lower=_lower_pad,
    # nn.ZeroPad2d takes (left, right, top, bottom)
    pytorch=lambda ins, out, a: Torch("nn.ZeroPad2d", (("padding", tuple(pad_sides(a)[i] for i in (1, 3, 0, 2))),)),
    label=_pad_label,
    group="shape",
))

# --- the network input -------------------------------------------------------------------------

register(LayerKind(
    name="input",
    doc="the network input, H x W x C",
    params={"shape": Param(lambda v: v, REQUIRED, "shape")},
    infer=lambda ins, a: a["shape"],
    lower=lambda ctx, node, ins, out, a: None,
    label=lambda a: "input",
    arity=(0, 0),
    group="io",
))


# What other frameworks call our kinds and parameters (PyTorch, Keras, Caffe, Darknet), for diagnostics
# only: `dense 10` is an error whose help says `fc 10`. Keys are lowercase with `_` removed.
FOREIGN_KINDS = {
    "dense": "fc", "linear": "fc", "innerproduct": "fc", "connected": "fc",
    "conv2d": "conv", "convolution": "conv", "convolutional": "conv",
    "maxpool": "pool", "maxpool2d": "pool", "maxpooling2d": "pool", "pooling": "pool",
    "avgpool": "pool avg", "avgpool2d": "pool avg", "averagepooling2d": "pool avg",
    "globalaveragepooling2d": "gap", "adaptiveavgpool2d": "gap", "globalavgpool": "gap", "avgpoolglobal": "gap",
    "batchnorm": "bn", "batchnorm2d": "bn", "batchnormalization": "bn",
    "convtranspose2d": "deconv", "conv2dtranspose": "deconv", "deconvolution": "deconv", "transposedconv": "deconv",
    "depthwiseconv2d": "dwconv", "depthwise": "dwconv", "separableconv2d": "sepconv",
    "localresponsenorm": "lrn", "upsampling2d": "upsample", "resize": "upsample",
    "concatenate": "concat", "cat": "concat", "route": "concat", "multiply": "mul",
    "zeropadding2d": "pad", "zeropad2d": "pad",
    "swish": "silu", "leaky": "leakyrelu", "linearactivation": "identity",
}
FOREIGN_PARAMS = {
    "kernel": "f", "kernelsize": "f", "k": "f", "size": "f", "filtersize": "f", "poolsize": "f",
    "stride": "s", "strides": "s", "padding": "p", "pad": "p",
    "filters": "n", "outchannels": "n", "numoutput": "n", "units": "n", "outfeatures": "n", "channels": "n",
    "groups": "g", "dilation": "d", "dilationrate": "d", "activation": "act", "usebias": "bias",
    "p": "rate", "droprate": "rate", "ceilmode": "ceil", "scalefactor": "scale", "outputpadding": "op",
    "depthmultiplier": "m", "multiplier": "m", "negativeslope": "alpha", "epsilon": "eps",
}


def foreign(table: dict[str, str], word: str) -> str | None:
    """Our name for another framework's word (`stride` -> `s`), or None."""
    return table.get(word.lower().replace("_", ""))


# Kinds that the graph builder treats as keywords in the language (not user-facing layer kinds).
INTERNAL = {"input"}


@record(frozen=False)
class Cost:
    """What one layer costs: parameters (trainable / non-trainable) and multiply-accumulates."""

    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


__all__ = [
    "ACTIVATIONS", "Act", "Attrs", "Cost", "FOREIGN_KINDS", "FOREIGN_PARAMS", "FixedKernel", "INTERNAL", "KERNELS",
    "LAYERS", "LayerKind", "Param",
    "ParamError", "REQUIRED",
    "Shape", "ShapeError", "Sym", "Weight", "fmt_shape", "register", "resolve_pads", "resolve_params",
    "foreign", "window_out",
]
