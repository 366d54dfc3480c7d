"""Channels-last ONNX graphs (Keras through tf2onnx) rewritten into the NCHW form `cnndsl import` reads.

tf2onnx keeps Keras' layout at the edges: the input is N x H x W x C and a Transpose turns it to NCHW for
the first Conv (unless the model was exported with `inputs_as_nchw`); its optimiser pushes the other
Transposes through what it can, and leaves them around the ops it keeps channels-last (the Reshape of a
Flatten, a Dense applied per position, a Concatenate or a reduction over axes [1, 2]). It also writes some
layers its own way: Dense as MatMul + Add, BatchNormalization whose statistics it folded as Mul + Add by
constants per channel, GlobalAveragePooling2D as GlobalAveragePool + Squeeze, ZeroPadding2D as Pad before
a valid convolution, and Reshapes to the shape a tensor already has.

`normalise(model)` rewrites such a graph in place so that every tensor is NCHW (or N x F) and every layer
is in the form the importer already lifts:

- a Transpose between the two layouts is a view: it becomes an Identity, and the tensors it reaches are
  tagged channels-last; ops on them are rewritten for NCHW (element-wise ops with their constants
  permuted, Concat, Pad and reductions with their axes permuted, a MatMul by a constant [C, n] as a 1x1
  Conv); any other op reading them gets a real Transpose back, so the importer names it;
- a channels-last Flatten (Reshape to N x H*W*C) becomes Flatten, and the rows of the Dense weights
  that read it are permuted from H, W, C order to C, H, W order, so `flatten -> fc` means what Keras'
  Flatten -> Dense means;
- MatMul + Add of a constant vector becomes Gemm (`fc`); Mul + Add by constants per channel becomes
  BatchNormalization with mean 0 and variance 1 - eps (`bn`, folded into the conv before it); a Squeeze
  of the 1 x 1 after global pooling becomes Flatten; a Reshape to the tensor's own shape an Identity;
- a zero Pad read only by a Conv goes into the Conv's pads when the sum is symmetric or is `p=same`'s
  placement (Keras' `correct_pad` before a strided depthwise conv); any other stays a Pad (`pad`).

The importer then reads the rewritten model as any other; the check runs the original file, fed N x H x W
x C (`Layout.input_channels_last`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
AXIS = {0: 0, 1: 2, 2: 3, 3: 1}  # an N x H x W x C axis -> the same axis of N x C x H x W
ELEMENTWISE = {"Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "HardSwish", "HardSigmoid", "Identity",
               "Dropout", "Add", "Mul", "Sub", "Div", "Max", "Min", "Erf", "Gelu", "Neg", "Abs", "Sqrt", "Exp",
               "PRelu", "Selu", "Softplus"}
UNARY = {"Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "HardSwish", "HardSigmoid", "Identity", "Dropout",
         "Gelu", "Selu", "Softplus"}
FIRST_ONLY = {"Reshape", "Squeeze", "Unsqueeze", "Pad", "Slice", "Expand", "Tile", "ReduceMean", "ReduceMax",
              "ReduceMin", "ReduceSum", "Clip"}  # ops whose other inputs are sizes or bounds, not data
AFFINE = {"Mul", "Add", "Sub", "Div"}
MODULE_KEY = "cnndsl.module"  # a node's module path, from Keras' layer names (read by onnx_import._module_path)
BN_EPS = 1e-5  # the epsilon of the batch norms written for Mul + Add (cnndsl's default: nothing to write)


@dataclass
class Layout:
    """What the rewrite found: the model's input (and which outputs) are N x H x W x C, and notes for the
    spec's header."""

    input_channels_last: bool = False
    outputs_channels_last: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def channels_last_input(model) -> bool:
    """The model's image input is N x H x W x C: what reads it is a Transpose(0, 3, 1, 2), maybe after
    element-wise ops with constants (Keras' Rescaling and Normalization layers)."""
    g = model.graph
    consts = {t.name for t in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        return False
    users: dict[str, list] = defaultdict(list)
    for n in g.node:
        for i in n.input:
            users[i].append(n)
    todo, seen, found = [inputs[0].name], set(), False
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        for n in users.get(t, []):
            if n.op_type == "Transpose" and _perm(n) == TO_NCHW:
                found = True
            elif n.op_type in ELEMENTWISE and all(i == t or i in consts for i in n.input if i) and len(seen) < 16:
                todo.extend(n.output)
            else:
                return False
    return found


def _perm(node) -> list[int]:
    return [int(p) for a in node.attribute if a.name == "perm" for p in a.ints]


def applies(model) -> bool:
    """Graphs this rewrite is for: tf2onnx's, or any whose input is channels-last."""
    return model.producer_name == "tf2onnx" or channels_last_input(model)


def normalise(model) -> Layout:
    """Rewrite a shape-inferred channels-last model in place (see the module's docstring); returns what it
    found. A model that is not tf2onnx's and has an NCHW input is left as it is."""
    layout = Layout()
    if not applies(model):
        return layout
    bn = 0
    for _ in range(4):  # a rewrite gives later tensors static shapes (Keras' Dense on N x H x W x C as a conv), and
        # the next round can follow them
        before = [(n.op_type, tuple(n.input)) for n in model.graph.node]
        round_ = Layout()
        rw = _Rewrite(model, round_)
        rw.run()
        bn += rw.bn
        layout.input_channels_last = layout.input_channels_last or round_.input_channels_last
        layout.outputs_channels_last = [a or b for a, b in zip(
            layout.outputs_channels_last or round_.outputs_channels_last, round_.outputs_channels_last, strict=True)]
        if [(n.op_type, tuple(n.input)) for n in model.graph.node] == before or not any(
                n.op_type == "Transpose" for n in model.graph.node):
            break
    if bn:
        layout.notes.append(f"{bn} batch norm(s) came as x * scale + shift (tf2onnx folds the statistics): imported "
                            "as `bn` with that scale and shift, mean 0 and variance 1 - eps")
    if layout.input_channels_last:
        layout.notes.append("the model's input is channels-last (N x H x W x C), as Keras writes it; the spec's "
                            "ONNX export takes N x C x H x W")
    return layout


class _Rewrite:
    def __init__(self, model, layout: Layout):
        from onnx import numpy_helper

        self.model, self.layout = model, layout
        g = model.graph
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.dims: dict[str, list] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        self.consumers: dict[str, list] = defaultdict(list)
        for n in g.node:
            for i in n.input:
                self.consumers[i].append(n)
        self.tag: dict[str, object] = {}  # "nhwc", or ("hwc", h, w, c) for a vector flattened in H, W, C order
        self.new: list = []
        self.skip: set[int] = set()
        self.fresh = 0
        self.bn = 0

    # --- helpers ---------------------------------------------------------------------------------

    def const(self, value: np.ndarray, hint: str) -> str:
        from onnx import numpy_helper

        name = ""
        while not name or name in self.consts:  # unique across rounds too
            self.fresh += 1
            name = f"cnndsl_layout_{self.fresh}_{hint}"
        self.consts[name] = value
        self.model.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def emit(self, op: str, inputs: list[str], outputs: list[str], like=None, **attrs) -> None:
        from onnx import helper

        node = helper.make_node(op, inputs, outputs, name=(like.name if like is not None else outputs[0]), **attrs)
        if like is not None:
            node.metadata_props.extend(like.metadata_props)
        self.new.append(node)

    def sole_user(self, name: str, op: str):
        users = self.consumers.get(name, [])
        outs = {o.name for o in self.model.graph.output}
        if len(users) == 1 and users[0].op_type == op and name not in outs:
            return users[0]
        return None

    def other_const(self, node, data: str) -> np.ndarray | None:
        ins = [i for i in node.input if i]
        if len(ins) != 2 or data not in ins:
            return None
        return self.consts.get(ins[1] if ins[0] == data else ins[0])

    # --- the pass --------------------------------------------------------------------------------

    def fold_constants(self) -> None:
        """Nodes computed from constants only (the raw conversion's weight Transposes and Reshapes, batch norm's
        scale from its statistics) become constants."""
        from onnx import helper, numpy_helper

        g = self.model.graph
        keep, made = [], []
        for n in g.node:
            xs = [self.consts.get(i) for i in n.input if i]
            fn = _CONST_OPS.get(n.op_type)
            if fn is None or not n.input or any(x is None for x in xs) or len(n.output) != 1:
                keep.append(n)
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            try:
                val = np.asarray(fn(xs, attrs))
            except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, FloatingPointError):
                keep.append(n)
                continue
            if val.dtype == np.float64 and all(x.dtype == np.float32 for x in xs if x.dtype.kind == "f"):
                val = val.astype(np.float32)
            self.consts[n.output[0]] = val
            made.append(numpy_helper.from_array(val, n.output[0]))
        if made:
            copies = [_copy(n) for n in keep]
            del g.node[:]
            g.node.extend(copies)
            g.initializer.extend(made)
            self.consumers = defaultdict(list)
            for n in g.node:
                for i in n.input:
                    self.consumers[i].append(n)

    def name_modules(self) -> None:
        """Keras' layer names as module paths (`model/block_1_expand_1/Conv2D` -> block.1.expand), for the
        importer's units and blocks; a node tf2onnx named itself (`Conv__351`, a conv with batch norm folded
        in) takes the layer of its weight."""
        import re

        from onnx import StringStringEntryProto

        for n in self.model.graph.node:
            name = n.name
            if "/" not in name:
                name = next((i for i in n.input[1:] if i in self.consts and i.count("/") >= 2), "")
            parts = name.split("/")
            if len(parts) < 3 or name.startswith("/") or any(p.key == MODULE_KEY for p in n.metadata_props):
                continue
            layer = re.sub(r"_\d+$", "", parts[1])
            n.metadata_props.append(StringStringEntryProto(key=MODULE_KEY, value=".".join(
                w for w in layer.split("_") if w)))

    def run(self) -> None:
        self.fold_constants()
        self.name_modules()
        g = self.model.graph
        inits = {t.name for t in g.initializer}
        src = next(i for i in g.input if i.name not in inits)
        if channels_last_input(self.model):
            self.layout.input_channels_last = True
            self.tag[src.name] = "nhwc"
            dims = src.type.tensor_type.shape.dim
            n, h, w, c = (dims[i].SerializeToString() for i in range(4))
            for i, blob in enumerate((n, c, h, w)):
                dims[i].ParseFromString(blob)
        for node in g.node:
            if id(node) in self.skip:
                continue
            self.node(node)
        for o in g.output:
            t = self.tag.get(o.name)
            self.layout.outputs_channels_last.append(t == "nhwc")
            if isinstance(t, tuple):  # a Flatten's H, W, C order reaches an output: left for the importer to name
                self.back_to_keras_order(o.name)
        self.fold_bias()
        nodes = [_copy(n) for n in self.new]  # copied before the old list goes
        del g.node[:]
        g.node.extend(nodes)
        self.reinfer()

    def fold_bias(self) -> None:
        """An Add of one constant a channel right after a Conv without bias (the raw conversion's BiasAdd,
        behind its Transposes) is that Conv's bias."""
        producer = {o: n for n in self.new for o in n.output}
        users: dict[str, int] = defaultdict(int)
        for n in self.new:
            for i in n.input:
                users[i] += 1
        outs = {o.name for o in self.model.graph.output}
        for k, n in enumerate(self.new):
            if n.op_type != "Add" or len(n.input) != 2:
                continue
            j = 0 if n.input[1] in self.consts else 1 if n.input[0] in self.consts else None
            if j is None or n.input[j] in self.consts:
                continue
            b = self.consts[n.input[1 - j]]
            x = n.input[j]
            chain = [x]
            while producer.get(x) is not None and producer[x].op_type == "Identity":
                x = producer[x].input[0]
                chain.append(x)
            conv = producer.get(x)
            if conv is None or conv.op_type != "Conv" or len(conv.input) != 2 or any(
                    users[t] != 1 or t in outs for t in chain):
                continue
            w = self.consts.get(conv.input[1])
            if w is None or w.ndim != 4 or b.size != w.shape[0] or b.shape[-1:] not in ((w.shape[0],), (1,)) and \
                    tuple(v for v in b.shape if v != 1) != (w.shape[0],):
                continue
            conv.input.append(self.const(b.reshape(-1).astype(w.dtype), "bias"))
            ident = _copy(n)
            ident.op_type = "Identity"
            del ident.input[:]
            ident.input.append(n.input[j])
            self.new[k] = ident

    def reinfer(self) -> None:
        from onnx import shape_inference

        g = self.model.graph
        del g.value_info[:]
        for o in g.output:
            o.type.tensor_type.ClearField("shape")
        try:
            inferred = shape_inference.infer_shapes(self.model, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - the importer reports the tensors left without shapes
            return
        self.model.CopyFrom(inferred)

    def back_to_keras_order(self, name: str) -> None:
        """Rename tensor `name` to `name`/nchw and recompute it in its original layout (a real Transpose,
        which the importer then names as the op it cannot follow)."""
        keep = f"{name}/cnndsl_nchw"
        for n in self.new:
            n.output[:] = [keep if o == name else o for o in n.output]
            n.input[:] = [keep if i == name else i for i in n.input]
        self.emit("Transpose", [keep], [name], perm=TO_NHWC)

    def node(self, node) -> None:
        op = node.op_type
        data = [i for i in (node.input[:1] if op in FIRST_ONLY else node.input) if i and i not in self.consts]
        tags = [self.tag.get(i) for i in data]
        if op == "Transpose" and len(data) == 1:
            perm = _perm(node)
            if perm == TO_NCHW and tags[0] == "nhwc":
                return self.alias(node)
            if perm == TO_NHWC and tags[0] is None and len(self.dims.get(data[0]) or []) == 4:
                self.alias(node)
                self.tag[node.output[0]] = "nhwc"
                return None
        if any(t is not None for t in tags):
            return self.channels_last(node, data, tags)
        return self.plain(node)

    def alias(self, node) -> None:
        self.emit("Identity", [node.input[0]], [node.output[0]], like=node)

    # --- ops on NCHW tensors and vectors: the forms tf2onnx writes for Keras layers -----------------

    def plain(self, node) -> None:
        op, out = node.op_type, node.output[0] if node.output else ""
        x = node.input[0] if node.input else ""
        d = self.dims.get(x) or []
        if op == "MatMul" and len(d) != 4:  # a vector (or one whose size is computed at run time)
            w = self.consts.get(node.input[1])
            add = self.sole_user(out, "Add")
            b = self.other_const(add, out) if add is not None else None
            if w is not None and w.ndim == 2 and b is not None and b.size == w.shape[1]:
                self.emit("Gemm", [x, node.input[1], self.const(b.reshape(-1), "bias")], [add.output[0]], like=node)
                self.skip.add(id(add))
                return
        if op == "Mul" and len(d) == 4:
            s = self.other_const(node, x) if x not in self.consts else None
            add = self.sole_user(out, "Add")
            t = self.other_const(add, out) if add is not None else None
            c = d[1]
            if s is not None and t is not None and c and _per_channel(s, c) and _per_channel(t, c):
                self.batchnorm(node, x, s, t, c, add.output[0])
                self.skip.add(id(add))
                return
        if op in AFFINE and len(d) == 4 and d[1] and self.affine(node, d[1]):
            return None
        if op == "Squeeze" and len(d) == 4 and d[2:] == [1, 1] and len(self.dims.get(out) or []) == 2:
            return self.emit("Flatten", [x], [out], like=node, axis=1)
        if op == "Reshape" and d and None not in d[1:] and self.dims.get(out) == d:
            return self.alias(node)
        if op == "Pad" and self.fold_pad(node):
            return None
        if op == "Conv" and len(d) == 4:
            self.split_pads(node, d)
        if op in ("MaxPool", "AveragePool") and len(d) == 4:
            self.ceil_pool(node, d)
        self.new.append(node)
        return None

    def ceil_pool(self, pool, d: list) -> None:
        """A MaxPool padded more at the bottom/right than at the top/left (TensorFlow's `same`) is the pool
        padded top/left on both sides in ceil mode, when that gives as many outputs: the extra padding is
        -infinity, which a window that runs past the end ignores just the same. So is an AveragePool that
        leaves the padding out of its count (count_include_pad=0): ceil mode's overflow is not counted either."""
        from onnx import helper

        from .layers import window_out

        attrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        f = [int(k) for k in attrs.get("kernel_shape", [])]
        s = [int(k) for k in attrs.get("strides", [1, 1])]
        if (len(pads) != 4 or len(f) != 2 or None in d[2:] or attrs.get("ceil_mode", 0)
                or (pool.op_type == "AveragePool" and attrs.get("count_include_pad", 0))
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or attrs.get("dilations", [1, 1])
                != [1, 1] or pads[:2] == pads[2:] or pads[2] < pads[0] or pads[3] < pads[1]):
            return
        for n, k, st, lo, hi in zip(d[2:], f, s, pads[:2], pads[2:], strict=True):
            if window_out(n, k, st, lo, hi) != window_out(n, k, st, lo, lo, ceil=True):
                return
        for a in list(pool.attribute):
            if a.name in ("pads", "ceil_mode"):
                pool.attribute.remove(a)
        pool.attribute.extend([helper.make_attribute("pads", pads[:2] * 2), helper.make_attribute("ceil_mode", 1)])

    def split_pads(self, conv, d: list) -> None:
        """A Conv padded unequally in a way `p=same` does not place (TensorFlow's `same` with stride 2 on an
        even size: the odd pixel bottom/right only) reads a `pad` of the difference first, exact for zeros."""
        from onnx import helper

        from .layers import resolve_pads

        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        w = self.consts.get(conv.input[1]) if len(conv.input) > 1 else None
        f = tuple(int(k) for k in attrs.get("kernel_shape") or (w.shape[2:] if w is not None else ()))
        if len(pads) != 4 or len(f) != 2 or None in d[2:] or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET",
                                                                                                      "NOTSET"):
            return
        top, left, bottom, right = pads
        same = resolve_pads(d[2], d[3], {"f": f, "s": tuple(attrs.get("strides", [1, 1])),
                                         "d": tuple(attrs.get("dilations", [1, 1])), "p": "same"})
        if (top, left) == (bottom, right) or tuple(same) == (top, left, bottom, right):
            return
        ph, pw = min(top, bottom), min(left, right)
        extra = [0, 0, top - ph, left - pw, 0, 0, bottom - ph, right - pw]
        mid = f"{conv.output[0]}/cnndsl_pad"
        self.emit("Pad", [conv.input[0], self.const(np.array(extra, np.int64), "pads")], [mid], like=conv,
                  mode="constant")
        self.new[-1].name = f"{conv.name}/pad"
        conv.input[0] = mid
        for a in list(conv.attribute):
            if a.name == "pads":
                conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute("pads", [ph, pw, ph, pw]))

    def affine(self, node, c: int) -> bool:
        """A chain of Mul, Add, Sub, Div by constants (one number, or one a channel) with a scalar among them, or
        a Sub or a Div (Keras' Rescaling, Normalization): x * a + b per channel, fixed, as BatchNormalization
        with mean 0, variance 1 and epsilon 0 (`affine`)."""
        a, b = np.ones(c, np.float64), np.zeros(c, np.float64)
        chain, cur, scalar_or_div = [], node, False
        x = next((i for i in node.input if i and i not in self.consts), None)
        data = x
        while cur is not None and cur.op_type in AFFINE and len(cur.input) == 2:
            ins = list(cur.input)
            if data not in ins or all(i in self.consts for i in ins):
                break
            k = self.consts.get(ins[1] if ins[0] == data else ins[0])
            if k is None or not (k.size == 1 or _per_channel(k, c)):
                break
            k = np.broadcast_to(k.reshape(-1).astype(np.float64), (c,))
            left = ins[0] != data  # the constant first: k - x, k / x
            if cur.op_type == "Mul":
                a, b = a * k, b * k
            elif cur.op_type == "Add":
                b = b + k
            elif cur.op_type == "Sub":
                a, b = (-a, k - b) if left else (a, b - k)
            elif left:  # k / x is no affine map
                break
            else:
                a, b = a / k, b / k
            scalar_or_div = scalar_or_div or k.size == 1 or cur.op_type in ("Sub", "Div") or len(set(k)) == 1
            chain.append(cur)
            data = cur.output[0]
            nxt = [u for u in self.consumers.get(data, [])]
            outs = {o.name for o in self.model.graph.output}
            cur = nxt[0] if len(nxt) == 1 and data not in outs else None
        if not chain or not scalar_or_div:
            return False
        f32 = np.float32
        ins = [x, self.const(a.astype(f32), "factor"), self.const(b.astype(f32), "offset"),
               self.const(np.zeros(c, f32), "zero_mean"), self.const(np.ones(c, f32), "unit_var")]
        self.emit("BatchNormalization", ins, [chain[-1].output[0]], like=node, epsilon=0.0)
        self.skip.update(id(n) for n in chain[1:])
        return True

    def batchnorm(self, like, x: str, s, t, c: int, out: str) -> None:
        """x * s + t per channel as batch norm: scale s, shift t, mean 0, variance 1 - eps."""
        f32 = np.float32
        ins = [x, self.const(s.reshape(-1).astype(f32), "scale"), self.const(t.reshape(-1).astype(f32), "shift"),
               self.const(np.zeros(c, f32), "mean"), self.const(np.full(c, 1 - BN_EPS, f32), "var")]
        self.emit("BatchNormalization", ins, [out], like=like, epsilon=BN_EPS)
        self.bn += 1

    def fold_pad(self, node) -> bool:
        """A zero Pad of H and W read only by a Conv: into the Conv's pads, when the sum is a padding the
        importer writes (symmetric, or `p=same`)."""
        from onnx import helper

        from .layers import resolve_pads

        pads = self.consts.get(node.input[1]) if len(node.input) > 1 else None
        value = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        mode = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "mode"), b"constant")
        conv = self.sole_user(node.output[0], "Conv")
        d = self.dims.get(node.input[0]) or []
        if (pads is None or pads.size != 8 or mode not in (b"constant", "constant") or conv is None or len(d) != 4
                or None in d[2:] or (value is not None and value.size and float(value.reshape(-1)[0]) != 0.0)
                or pads[[0, 1, 4, 5]].any() or (pads < 0).any()
                or any(a.name == "auto_pad" and helper.get_attribute_value(a) not in (b"NOTSET", "NOTSET")
                       for a in conv.attribute)):
            return False
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        w = self.consts.get(conv.input[1]) if len(conv.input) > 1 else None
        f = tuple(int(k) for k in attrs.get("kernel_shape") or (w.shape[2:] if w is not None else ()))
        if len(f) != 2:
            return False
        own = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        top, left, bottom, right = (int(pads[2]) + own[0], int(pads[3]) + own[1], int(pads[6]) + own[2],
                                    int(pads[7]) + own[3])
        s = tuple(int(k) for k in attrs.get("strides", [1, 1]))
        dil = tuple(int(k) for k in attrs.get("dilations", [1, 1]))
        same = resolve_pads(d[2], d[3], {"f": f, "s": s, "d": dil, "p": "same"})
        if (top, left) != (bottom, right) and (top, left, bottom, right) != tuple(same):
            return False
        for a in list(conv.attribute):
            if a.name == "pads":
                conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute("pads", [top, left, bottom, right]))
        conv.input[0] = node.input[0]
        return True

    # --- ops on channels-last tensors ------------------------------------------------------------

    def channels_last(self, node, data: list[str], tags: list) -> None:
        op, out = node.op_type, node.output[0]
        attrs = {a.name: a for a in node.attribute}
        from onnx import helper

        def get(name, default=None):
            return helper.get_attribute_value(attrs[name]) if name in attrs else default

        if all(t == "nhwc" for t in tags):
            if op == "Mul" and len(data) == 1 and self.channels_last_bn(node, data[0]):
                return None
            if op in ELEMENTWISE:
                ins = []
                for i in node.input:
                    c = self.consts.get(i) if i else None
                    if c is not None and c.ndim >= 1 and c.size > 1:
                        c4 = c.reshape((1,) * (4 - c.ndim) + c.shape) if c.ndim <= 4 else None
                        if c4 is None:
                            return self.unsupported(node, data, tags)
                        i = self.const(np.ascontiguousarray(c4.transpose(TO_NCHW)), "nchw")
                    ins.append(i)
                self.emit(op, ins, list(node.output), like=node, **{k: get(k) for k in attrs})
                self.tag[out] = "nhwc"
                return None
            if op == "Concat":
                self.emit(op, list(node.input), [out], like=node, axis=AXIS[int(get("axis")) % 4])
                self.tag[out] = "nhwc"
                return None
            if op == "Pad" and len(node.input) > 1 and node.input[1] in self.consts:
                p = self.consts[node.input[1]].reshape(-1).astype(np.int64)
                if p.size == 8:
                    q = np.concatenate([p[:4][TO_NCHW], p[4:][TO_NCHW]])
                    self.emit(op, [node.input[0], self.const(q, "pads"), *node.input[2:]], [out], like=node,
                              **{k: get(k) for k in attrs})
                    self.tag[out] = "nhwc"
                    return None
            if op.startswith("Reduce") and len(data) == 1:
                axes = get("axes")
                by_input = axes is None and len(node.input) > 1 and node.input[1] in self.consts
                if by_input:
                    axes = self.consts[node.input[1]].reshape(-1).tolist()
                if axes is not None:
                    new = sorted(AXIS[int(a) % 4] for a in axes)
                    keep = int(get("keepdims", 1))
                    kw = {k: get(k) for k in attrs if k != "axes"}
                    if by_input:
                        self.emit(op, [data[0], self.const(np.array(new, np.int64), "axes")], [out], like=node,
                                  **kw)
                    else:
                        self.emit(op, [data[0]], [out], like=node, axes=new, **kw)
                    if keep:
                        self.tag[out] = "nhwc"
                    elif sorted(int(a) % 4 for a in axes) != [1, 2]:
                        return self.unsupported_output(out)
                    return None
            if op == "Reshape" and len(data) == 1 and self.tensordot(node, data[0]):
                return None
            if op in ("Reshape", "Flatten") and len(data) == 1:
                d, o = self.dims.get(data[0]) or [], self.dims.get(out) or []
                if op == "Reshape" and not o and len(d) == 4 and None not in d[1:]:
                    o = self.flat_dims(node, d[1] * d[2] * d[3])
                if (len(d) == 4 and None not in d[1:] and len(o) == 2 and o[1] == d[1] * d[2] * d[3]
                        and (op == "Reshape" or int(get("axis", 1)) == 1)):
                    self.emit("Flatten", [data[0]], [out], like=node, axis=1)
                    _, h, w, c = d
                    if h * w > 1 and c > 1:
                        self.tag[out] = ("hwc", h, w, c)
                    return None
                if op == "Reshape" and o == d:
                    return self.alias_tagged(node, "nhwc")
            if op == "Squeeze" and len(data) == 1:
                d, o = self.dims.get(data[0]) or [], self.dims.get(out) or []
                if len(d) == 4 and d[1:3] == [1, 1] and len(o) == 2:
                    return self.emit("Flatten", [data[0]], [out], like=node, axis=1)
            if op == "MatMul" and len(data) == 1 and node.input[0] == data[0]:
                w = self.consts.get(node.input[1])
                if w is not None and w.ndim == 2:
                    n = w.shape[1]
                    ins = [data[0], self.const(np.ascontiguousarray(w.T.reshape(n, -1, 1, 1)), "weight")]
                    add = self.sole_user(out, "Add")
                    b = self.other_const(add, out) if add is not None else None
                    if b is not None and b.size == n:
                        ins.append(self.const(b.reshape(-1), "bias"))
                        self.skip.add(id(add))
                        out = add.output[0]
                    self.emit("Conv", ins, [out], like=node, kernel_shape=[1, 1])
                    self.tag[out] = "nhwc"
                    return None
        if len(data) == 1 and isinstance(tags[0], tuple):
            _, h, w, c = tags[0]
            if op in UNARY:
                self.new.append(node)
                self.tag[out] = tags[0]
                return None
            if op in ("MatMul", "Gemm") and node.input[0] == data[0] and node.input[1] in self.consts:
                wt = self.consts[node.input[1]]
                trans = op == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
                m = wt.T if trans else wt  # [H*W*C, n]
                if m.ndim == 2 and m.shape[0] == h * w * c and not (op == "Gemm" and any(
                        a.name == "transA" and a.i for a in node.attribute)):
                    m = m.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                    name = self.const(np.ascontiguousarray(m.T if trans else m), "chw_rows")
                    node.input[1] = name
                    return self.plain(node)
        return self.unsupported(node, data, tags)

    def tensordot(self, reshape, x: str) -> bool:
        """Keras' Dense on an N x H x W x C tensor (TensorFlow's Tensordot): Reshape to [N*H*W, C], MatMul by a
        constant [C, n], Reshape back to [N, H, W, n]: a 1x1 conv (its bias Add follows, and folds in)."""
        d = self.dims.get(x) or []
        mm = self.sole_user(reshape.output[0], "MatMul")
        back = self.sole_user(mm.output[0], "Reshape") if mm is not None else None
        w = self.consts.get(mm.input[1]) if mm is not None and mm.input[0] == reshape.output[0] else None
        if (len(d) != 4 or not d[3] or w is None or w.ndim != 2 or w.shape[0] != d[3] or back is None
                or back.input[0] != mm.output[0] or len(self.dims.get(reshape.input[1]) or [0]) != 1
                or (self.dims.get(reshape.input[1]) or [0])[0] != 2
                or (self.dims.get(back.input[1]) or [0])[0] != 4):
            return False
        n = w.shape[1]
        weight = self.const(np.ascontiguousarray(w.T.reshape(n, -1, 1, 1)), "weight")
        self.emit("Conv", [x, weight], [back.output[0]], like=mm, kernel_shape=[1, 1])
        self.skip.update((id(mm), id(back)))
        self.tag[back.output[0]] = "nhwc"
        return True

    def flat_dims(self, reshape, size: int) -> list:
        """[N, size] when a Reshape whose shape is computed at run time (Keras' Flatten: the batch from Shape,
        then -1) flattens: its shape has two entries and what reads it is a Dense of `size` inputs."""
        shape = self.consts.get(reshape.input[1])
        if shape is not None:
            return [None, size] if shape.size == 2 and int(shape[-1]) in (size, -1) else []
        if self.dims.get(reshape.input[1]) != [2]:
            return []
        users = self.consumers.get(reshape.output[0], [])
        if len(users) != 1 or users[0].op_type not in ("MatMul", "Gemm") or users[0].input[0] != reshape.output[0]:
            return []
        w = self.consts.get(users[0].input[1])
        trans = any(a.name == "transB" and a.i for a in users[0].attribute)
        return [None, size] if w is not None and w.ndim == 2 and w.shape[1 if trans else 0] == size else []

    def channels_last_bn(self, node, x: str) -> bool:
        """x * s + t with one constant a channel (the last axis) on a channels-last tensor: batch norm."""
        d = self.dims.get(x) or []
        s = self.other_const(node, x)
        add = self.sole_user(node.output[0], "Add")
        t = self.other_const(add, node.output[0]) if add is not None else None
        c = d[3] if len(d) == 4 else None
        if s is None or t is None or not c or c < 2 or s.size != c or t.size != c or s.shape[-1:] != (c,) or \
                t.shape[-1:] != (c,):
            return False
        self.batchnorm(node, x, s, t, c, add.output[0])
        self.skip.add(id(add))
        self.tag[add.output[0]] = "nhwc"
        return True

    def alias_tagged(self, node, tag) -> None:
        self.alias(node)
        self.tag[node.output[0]] = tag

    def unsupported_output(self, name: str) -> None:
        self.back_to_keras_order(name)

    def unsupported(self, node, data: list[str], tags: list) -> None:
        """An op cnndsl cannot follow on a channels-last tensor: it reads the tensor in its original layout
        (a real Transpose before it), so the importer names it."""
        for i, t in zip(data, tags, strict=True):
            if t == "nhwc":
                back = f"{i}/cnndsl_nhwc"
                if not any(back in n.output for n in self.new):
                    self.emit("Transpose", [i], [back], perm=TO_NHWC)
                node.input[:] = [back if x == i else x for x in node.input]
            elif isinstance(t, tuple):
                _, h, w, c = t
                back = f"{i}/cnndsl_hwc"
                if not any(back in n.output for n in self.new):
                    mid = f"{i}/cnndsl_chw"
                    self.emit("Reshape", [i, self.const(np.array([-1, c, h, w], np.int64), "shape")], [mid])
                    self.emit("Transpose", [mid], [f"{mid}_t"], perm=TO_NHWC)
                    self.emit("Reshape", [f"{mid}_t", self.const(np.array([-1, h * w * c], np.int64), "shape")],
                              [back])
                node.input[:] = [back if x == i else x for x in node.input]
        self.new.append(node)


def _per_channel(v: np.ndarray, c: int) -> bool:
    """A constant with one value per channel of an NCHW tensor: [1, C, 1, 1] or [C, 1, 1]."""
    dims = tuple(int(k) for k in v.shape)
    while len(dims) > 3 and dims[0] == 1:
        dims = dims[1:]
    return dims == (c, 1, 1) and c > 1


def _copy(node):
    from onnx import NodeProto

    c = NodeProto()
    c.CopyFrom(node)
    return c


def _reshape(xs, a):
    x, shape = xs[0], [int(v) for v in xs[1].reshape(-1)]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _unsqueeze(xs, a):
    axes = [int(v) for v in (xs[1].reshape(-1) if len(xs) > 1 else a["axes"])]
    out = xs[0]
    for ax in sorted(v % (out.ndim + len(axes)) for v in axes):
        out = np.expand_dims(out, ax)
    return out


# ops evaluated when all their inputs are constants
_CONST_OPS = {
    "Transpose": lambda xs, a: np.transpose(xs[0], a.get("perm")),
    "Reshape": _reshape,
    "Identity": lambda xs, a: xs[0],
    "Cast": lambda xs, a: xs[0].astype(__import__("onnx").helper.tensor_dtype_to_np_dtype(int(a["to"]))),
    "Mul": lambda xs, a: xs[0] * xs[1],
    "Add": lambda xs, a: xs[0] + xs[1],
    "Sub": lambda xs, a: xs[0] - xs[1],
    "Div": lambda xs, a: xs[0] / xs[1] if xs[0].dtype.kind == "f" else xs[0] // xs[1],
    "Sqrt": lambda xs, a: np.sqrt(xs[0]),
    "Reciprocal": lambda xs, a: 1 / xs[0],
    "Neg": lambda xs, a: -xs[0],
    "Squeeze": lambda xs, a: np.squeeze(xs[0], tuple(int(v) for v in (xs[1].reshape(-1) if len(xs) > 1 else
                                                                          a.get("axes", ())))) if len(xs) > 1 or
    a.get("axes") else np.squeeze(xs[0]),
    "Unsqueeze": _unsqueeze,
}
