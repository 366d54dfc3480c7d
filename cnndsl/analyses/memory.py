"""Memory: will it fit? Inference peak under a free-after-last-use schedule, and training memory.

A pure pass over the checked graph (node attributes `op`, `attrs`, `shape`, `params`, `trainable`).
Everything is arithmetic on shapes; docs/analyses.md states the assumptions, and benchmarks/memory.py
checks the training model against PyTorch's measured peak.

Inference: the layers run one after another in the order cnndsl exports them (node order); each layer's
output is one tensor (the runtime fuses a layer's conv, batch norm and activation), allocated when the
layer runs and freed after its last consumer; the network's outputs are kept. `dropout`, `identity` and
`flatten` reuse their input's memory. The peak is the largest sum of live tensors, reached while some
layer runs (its inputs and its output are live together).

Training, as PyTorch's autograd does it for torchvision's models: each operation keeps what its backward
needs (a conv or fc its input; batch norm its input; ReLU, run in place, its output; ReLU6 a copy of its
input; max pool
its input and int64 indices; dropout a one-byte mask; ...). One step is simulated: the forward keeps the
saved tensors alive; the backward walks the layers in reverse, holding each layer's output gradient and
its input gradients, allocating the weight gradients and freeing the saved tensors as it passes them; the
optimizer step holds weights, gradients and its state (none for sgd, one buffer for momentum, two for
adam). Weights and optimizer state are alive throughout (the steady state after the first step).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import LayerGraph
from ..util import prod
from . import inputs

DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2}  # buffers of optimizer state per trainable parameter
ALIASES = {"dropout", "identity", "flatten"}  # at inference: no new tensor
INPLACE = {"relu", "leakyrelu", "elu"}  # run in place, keep their output (torchvision's inplace=True)
SAVE_OUTPUT = {"sigmoid", "tanh", "softmax"}  # keep their output; a new tensor
# keep their input; a new tensor. NOTE: ReLU6 is in place in torchvision, but its backward needs the
# input, so autograd keeps a copy: the same memory as a new output.
SAVE_INPUT = {"silu", "gelu", "hardswish", "hardsigmoid", "relu6", "prelu"}
WEIGHTED = {"conv", "dwconv", "sepconv", "deconv", "fc"}
INDEX_BYTES, MASK_BYTES = 8, 1  # max pool's int64 indices, dropout's bool mask


@dataclass(frozen=True)
class Inference:
    batch: int
    dtype: str
    input_bytes: int
    sum_bytes: int  # every layer's output at once (the summary's "activations")
    peak_bytes: int  # free after last use, in export order
    peak_layer: str  # the layer running at the peak


def inference(g: LayerGraph, batch: int = 1, dtype: str = "float32") -> Inference:
    """Peak activation memory when each tensor is freed after its last use, layers in export order."""
    b = DTYPES[dtype] * batch
    order = list(g)
    index = {n: i for i, n in enumerate(order)}
    outputs = set(g.graph["outputs"])
    storage: dict[str, str] = {}
    last: dict[str, float] = {}
    for n in order:
        d = g.nodes[n]
        srcs = inputs(g)[n]
        storage[n] = storage[srcs[0]] if d["op"] in ALIASES and srcs else n
        st = storage[n]
        last[st] = max(last.get(st, index[n]), float("inf") if n in outputs else index[n])
        for s in srcs:
            last[storage[s]] = max(last[storage[s]], index[n])
    frees: dict[int, list[str]] = {}
    for st, i in last.items():
        if i != float("inf"):
            frees.setdefault(int(i), []).append(st)
    live = peak = 0
    peak_layer = order[0]
    for i, n in enumerate(order):
        d = g.nodes[n]
        if storage[n] == n:
            live += d["size"] * b
        extra = 0
        if d["op"] == "sepconv":  # the depthwise half's output, before the pointwise 1x1
            h, w, _ = d["shape"]
            extra = h * w * g.nodes[inputs(g)[n][0]]["shape"][2] * b
        if live + extra > peak:
            peak, peak_layer = live + extra, n
        for st in frees.get(i, ()):
            live -= g.nodes[st]["size"] * b
    inp = g.graph["input"]
    return Inference(batch, dtype, g.nodes[inp]["size"] * b, sum(d["size"] for _, d in g.nodes(data=True)) * b,
                     peak, peak_layer)


@dataclass(frozen=True)
class Training:
    batch: int
    dtype: str
    optimizer: str
    input_bytes: int
    weights: int  # every parameter, running statistics included
    grads: int  # one per trainable parameter
    optimizer_state: int
    saved: int  # activations kept for backward (with max pool indices and dropout masks)
    peak: int  # the simulated step's peak
    peak_at: str  # "forward", "backward at `layer`" or "optimizer step"

    @property
    def total(self) -> int:
        """weights + gradients + optimizer state + activations kept for backward (torchinfo's sum)."""
        return self.weights + self.grads + self.optimizer_state + self.saved


@dataclass(slots=True)
class _Tensor:
    bytes: int
    saved_by: list[int]  # forward indices of the layers that keep it for backward
    last_use: int  # forward index of its last reader
    kept: bool = False  # a network output: alive until the loss's backward


def _layer_tensors(op: str, a: dict, x_size: int, out_size: int, mid_size: int) -> list[tuple[int, bool]]:
    """The tensors a layer allocates in training: (elements, saved by a later op inside the layer), the last
    being its output. `mid_size` is a sepconv's depthwise output."""
    if op in WEIGHTED:
        stages = [mid_size, out_size] if op == "sepconv" else [out_size]
        out: list[tuple[int, bool]] = []
        for k, size in enumerate(stages):
            cur = [size, False]  # the raw conv output
            if a.get("bn"):
                cur[1] = True  # batch norm keeps its input
                out.append(tuple(cur))  # type: ignore[arg-type]
                cur = [size, False]
            act = a.get("act", "none")
            if act in INPLACE or act in SAVE_OUTPUT:
                if act in SAVE_OUTPUT:
                    out.append(tuple(cur))  # type: ignore[arg-type]
                    cur = [size, False]
                cur[1] = True
            elif act in SAVE_INPUT:
                cur[1] = True
                out.append(tuple(cur))  # type: ignore[arg-type]
                cur = [size, False]
            if op == "sepconv" and k == 0:
                cur[1] = True  # the pointwise conv keeps its input
            out.append(tuple(cur))  # type: ignore[arg-type]
        return out
    if op in SAVE_OUTPUT:
        return [(out_size, True)]
    return [(out_size, False)]


def training(g: LayerGraph, batch: int = 1, dtype: str = "float32", optimizer: str = "sgd") -> Training:
    """Weights, gradients, optimizer state, activations kept for backward, and the peak of one step."""
    b = DTYPES[dtype] * batch
    w = DTYPES[dtype]
    nd = g._node  # NOTE: the node dict itself, cheaper than g.nodes[...] in these loops
    order = list(g)
    outputs = set(g.graph["outputs"])
    tensors: list[_Tensor] = []
    out_of: dict[str, int] = {}  # layer -> the tensor holding its output
    born: dict[int, list[int]] = {}  # forward index -> tensors allocated there
    trainable = sum(d["trainable"] for d in nd.values())
    params = sum(d["params"] for d in nd.values())

    def new(nbytes: int, i: int, saved: bool = False) -> int:
        tensors.append(_Tensor(nbytes, [i] if saved else [], i))
        born.setdefault(i, []).append(len(tensors) - 1)
        return len(tensors) - 1

    for i, n in enumerate(order):
        d = nd[n]
        op, a = d["op"], d["attrs"]
        srcs = inputs(g)[n]
        if op == "input":
            out_of[n] = new(d["size"] * b, i)
            continue
        ins = [out_of[s] for s in srcs]
        for t in ins:
            tensors[t].last_use = i
        x_shape = nd[srcs[0]]["shape"]
        if op in WEIGHTED or op in SAVE_INPUT or op in ("bn", "lrn", "mul", "pool", "gap"):
            for t in ins if op == "mul" else ins[:1]:
                tensors[t].saved_by.append(i)
        if op in ("identity", "flatten"):
            out_of[n] = ins[0]
            continue
        if op in INPLACE and len(g.succ[srcs[0]]) == 1 and srcs[0] not in outputs \
                and nd[srcs[0]]["op"] != "input":
            out_of[n] = ins[0]  # in place: the input's memory becomes the output, kept for backward
            tensors[ins[0]].saved_by.append(i)
            continue
        if op in INPLACE:
            out_of[n] = new(d["size"] * b, i, saved=True)
            continue
        if op == "pool" and a.get("mode") == "max":
            new(d["size"] * INDEX_BYTES * batch, i, saved=True)
        if op == "dropout":
            new(d["size"] * MASK_BYTES * batch, i, saved=True)
        if op == "lrn":
            new(d["size"] * b, i, saved=True)  # its scale term
        mid = d["shape"][0] * d["shape"][1] * x_shape[2] if op == "sepconv" else 0
        made = [new(size * b, i, saved) for size, saved in _layer_tensors(op, a, prod(x_shape), d["size"], mid)]
        out_of[n] = made[-1]
        if op == "lrn":
            tensors[made[-1]].saved_by.append(i)
    for o in outputs:
        tensors[out_of[o]].kept = True

    # forward: a tensor that nobody keeps is freed after its last reader
    base = params * w + OPTIMIZERS[optimizer] * trainable * w
    dies: dict[int, int] = {}
    for t in tensors:
        if not t.saved_by and not t.kept:
            dies[t.last_use] = dies.get(t.last_use, 0) + t.bytes
    live = peak = 0
    peak_at = "forward"
    saved_total = sum(t.bytes for t in tensors if t.saved_by)
    for i in range(len(order)):
        live += sum(tensors[t].bytes for t in born.get(i, ()))
        peak = max(peak, base + live)
        live -= dies.get(i, 0)
    # backward, in reverse: the output gradient of each layer and the gradients of its inputs are live
    free_at: dict[int, list[_Tensor]] = {}
    for t in tensors:
        if t.saved_by:
            free_at.setdefault(min(t.saved_by), []).append(t)
    grads_alive: dict[str, int] = {o: nd[o]["size"] * b for o in outputs}
    grad_live = sum(grads_alive.values())
    weight_grads = 0
    for k in {out_of[o] for o in outputs}:  # an output nobody keeps is freed once the loss's gradient exists
        if not tensors[k].saved_by:
            live -= tensors[k].bytes
    for i in range(len(order) - 1, 0, -1):
        n = order[i]
        d = nd[n]
        extra = 0
        for s in inputs(g)[n]:
            if nd[s]["op"] != "input" and s not in grads_alive:
                grads_alive[s] = nd[s]["size"] * b
                grad_live += grads_alive[s]
        if d["op"] in WEIGHTED and (d["attrs"].get("bn") or d["attrs"].get("act", "none") != "none"):
            extra = d["size"] * b  # the gradient inside the layer (through its activation and batch norm)
        weight_grads += d["trainable"] * w
        now = base + live + grad_live + extra + weight_grads
        if now > peak:
            peak, peak_at = now, f"backward at `{n}`"
        grad_live -= grads_alive.pop(n, 0)
        live -= sum(t.bytes for t in free_at.get(i, ()))
    step = base + trainable * w + (max((d["trainable"] for d in nd.values()), default=0) * w
                                   if optimizer != "sgd" else 0)
    if step > peak:
        peak, peak_at = step, "optimizer step"
    inp = g.graph["input"]
    return Training(batch, dtype, optimizer, nd[inp]["size"] * b, params * w, trainable * w,
                    OPTIMIZERS[optimizer] * trainable * w, saved_total, peak, peak_at)

