"""The driver: text -> parse -> graph build -> passes -> Model.

This is the only place that writes analysis results into the graph (node attributes `shape`, `size`,
`params`, `trainable`, `non_trainable`, `macs`), and the place that gathers every stage's diagnostics
into one CompileError.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from . import ast, ir, passes, syntax
from .analyses import receptive, truncation
from .diagnostics import CompileError, Diagnostic, Note, Span, error
from .graph import LayerGraph, inputs_of, verify
from .layers import LAYERS, Shape
from .records import record
from .util import binary_bytes as _bytes
from .util import fmt_shape, gc_paused, prod

if TYPE_CHECKING:
    from collections.abc import Callable

    import networkx as nx

BYTES_PER_FLOAT = 4
MAX_PARAMS = 2**31  # parameters `compile`/`run` will make: 8 GiB of float32 weights
MAX_MEMORY = 2**34  # bytes of float32 weights plus every activation at the run's batch size: 16 GiB


@record
class LayerRow:
    """One row of the summary table: a layer, its output (activation) shape and its costs."""

    name: str
    op: str
    label: str
    inputs: tuple[str, ...]
    shape: Shape
    size: int
    params: int
    trainable: int
    non_trainable: int
    macs: int
    line: int
    col: int
    scope: str


@record
class Totals:
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int  # 2 x MACs
    weight_bytes: int  # every parameter (running statistics included) as float32
    activation_bytes: int  # every tensor the network computes, input included, float32, batch 1


NO_TOTALS = Totals(0, 0, 0, 0, 0, 0, 0)  # a model's totals until `Model.costed()` has made them


@record(frozen=False)
class Model:
    """A checked, costed network: the graph plus its table and totals."""

    name: str
    input_shape: Shape
    layer_graph: LayerGraph  # what cnndsl's own stages read (cnndsl.graph); `graph` is it as a networkx.DiGraph
    layers: list[LayerRow]  # topological (source) order, the input excluded
    totals: Totals
    outputs: list[str]
    path: str
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    program: ast.Program | None = None  # the parsed spec, for editors (cnndsl.editing)
    rf: receptive.Fields | None = None  # receptive fields (also node attribute `rf`), declined ones, coverage
    # the deferred costs of `compile_text(costs=False)`, called with the model (a function holding the model
    # would be a reference cycle: every version an editor checks would wait for the cyclic collector)
    pending: Callable[[Model], None] | None = None

    def costed(self) -> Model:
        """The model with its table, totals and node costs made (at once, unless `compile_text(costs=False)`)."""
        if self.pending is not None:
            work, self.pending = self.pending, None
            work(self)
        return self

    def layer(self, name: str) -> LayerRow:
        """The record of the layer `name` (its hierarchical id, `conv3_x.bottleneck2.conv1`)."""
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    @functools.cached_property
    def graph(self) -> nx.DiGraph:
        """The layer graph as a `networkx.DiGraph` (same nodes, edges and attributes as `layer_graph`), made on
        first use: networkx is imported only by whoever asks for it."""
        return self.layer_graph.to_networkx()

    @property
    def source(self) -> str:
        return self.sources.get(self.path, "")

    # --- the backends, as methods (docs/api.md); each imports its backend on first use ---------------

    def __repr__(self) -> str:
        t = self.totals
        return (f"<cnndsl.Model {self.name}: input {'x'.join(map(str, self.input_shape))}, {len(self.layers)} "
                f"layers, {t.params:,} parameters, {t.macs:,} MACs>")

    def summary(self, collapse: bool = False, depth: int | None = None, tree: bool = False,
                columns: tuple[str, ...] = (), width: int | None = None) -> str:
        """The table `cnndsl summary` prints, with the same options (columns: kernel, stride, padding,
        input, percent)."""
        from .backends import summary

        return summary.to_text(self, collapse=collapse, depth=depth, tree=tree, columns=columns, width=width)

    def to_dict(self, collapse: bool = False, depth: int | None = None, tree: bool = False,
                columns: tuple[str, ...] = ()) -> dict:
        """The document `cnndsl summary --json` prints."""
        from .backends import summary

        return summary.to_dict(self, collapse=collapse, depth=depth, tree=tree, columns=columns)

    def to_pandas(self):
        """The layer records as a pandas DataFrame, one row per layer (needs pandas, which cnndsl does not
        install)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Model.to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame([dataclasses.asdict(r) for r in self.layers]).set_index("name")

    def to_onnx(self, seed: int = 0, weights: str | None = None, zeros: bool = False, as_bytes: bool = False):
        """The ONNX model `cnndsl compile` writes, as an onnx.ModelProto (or its serialized bytes).

        Args:
            seed: seed of the default He uniform weights; `weights` an .npz of trained ones (by
                initializer name); `zeros` zero weights instead.
        """
        from .backends import onnx as ob

        ex = ob.to_onnx(self, seed=seed, init="zeros" if zeros else "he", weights=weights)
        return ex.to_bytes() if as_bytes else ex.to_proto()

    def to_dot(self, collapse: bool = False, depth: int | None = None, rankdir: str = "TB") -> str:
        """The diagram as Graphviz DOT text (needs no Graphviz)."""
        from .backends import dot

        return dot.to_dot(self, collapse=collapse, depth=depth, rankdir=rankdir)

    def render(self, path: str | Path, collapse: bool = False, depth: int | None = None, rankdir: str = "TB",
               dpi: int | None = None) -> Path:
        """Draw the diagram to `path` (.svg, .png, .pdf or .dot, by its suffix) and return the path written.

        Raises RuntimeError when Graphviz's `dot` is missing (the DOT text is then written beside `path`),
        and cnndsl.backends.dot.TooLarge for a bitmap too large to draw even folded."""
        from .backends import dot

        done = dot.render_file(self, path, collapse=collapse, depth=depth, rankdir=rankdir, dpi=dpi)
        if not done.image:
            raise RuntimeError(f"Graphviz's `dot` is not on PATH: wrote {done.path} instead; {dot.INSTALL_HINT}")
        return done.path

    def _repr_svg_(self) -> str | None:
        """A notebook shows the diagram (None, and the table instead, without Graphviz)."""
        from .backends import dot

        try:
            data, _ = dot._graphviz(self.to_dot(collapse=len(self.layers) > 200), "svg") or (None, "")
        except dot.RenderError:
            return None
        return data.decode() if data else None

    def _repr_html_(self) -> str:
        """A notebook shows the summary table."""
        import html

        return f"<pre>{html.escape(self.summary(collapse=len(self.layers) > 200))}</pre>"


def parse_shape(text: str) -> tuple[int, ...]:
    """`32x32x3` -> (32, 32, 3); raises ValueError for anything else."""
    parts = text.lower().replace(" ", "").split("x")
    if not all(p.isdigit() for p in parts) or len(parts) not in (1, 3):
        raise ValueError(f"expected HxWxC such as 32x32x3, got {text!r}")
    return tuple(int(p) for p in parts)


@gc_paused()
def compile_text(text: str, path: str = "<string>", input_shape: tuple[int, ...] | None = None,
                 max_layers: int = ir.MAX_NODES, allow_import=(), program: ast.Program | None = None,
                 costs: bool = True) -> Model:
    """Check and cost a spec given as text. Raises CompileError listing every problem found.

    `program`: the text's AST when the caller has parsed it already (an editor's incremental parse).
    `costs=False` (editors, on every keystroke): the diagnostics only; the table, the totals and the nodes'
    cost attributes are made by `Model.costed()` when first asked for (no diagnostic comes from them)."""
    sources = {path: text}
    try:
        prog = syntax.parse(text, path) if program is None else program
        g, diags = ir.build(prog, sources, input_shape, max_layers, allow_import)
    except RecursionError:
        raise CompileError([error("too-deep", "the spec is nested too deeply to compile", Span(path, 1, 1, 1, 2),
                                  help="flatten the nesting of blocks, branches or parentheses")], sources) from None
    shapes, shape_diags = passes.infer_shapes(g) if g.graph["input"] else ({}, [])
    diags += shape_diags
    if input_shape is None:  # the shapes written in the spec hold for the spec's own input, not for `--input`
        diags += passes.check_annotations(g, shapes)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        errors.sort(key=lambda d: (d.span.file != path, d.span.line, d.span.col) if d.span else (True, 0, 0))
        raise CompileError(errors + [d for d in diags if d.severity != "error"], sources)
    rf = receptive.receptive_fields(g, shapes)
    diags += [w for w in rf.diagnostics + truncation.diagnostics(g, shapes) if not _allowed(w, sources)]
    for n, d in g.nodes(data=True):  # what editors' inlay hints read on every change; the costs come later
        d.update(shape=shapes[n], size=prod(shapes[n]), rf=rf.fields.get(n))
    m = Model(
        name=g.graph["name"], input_shape=shapes[g.graph["input"]], layer_graph=g, layers=[], totals=NO_TOTALS,
        outputs=list(g.graph["outputs"]), path=path, sources=sources, warnings=diags, program=prog, rf=rf,
    )
    m.pending = functools.partial(_cost, shapes=shapes)
    return m.costed() if costs else m


def _cost(m: Model, shapes: dict[str, Shape]) -> None:
    """The costs pass, the table and the totals of a checked model (what `compile_text` defers for editors)."""
    g = m.layer_graph
    verify(g)
    costs = passes.count_costs(g, shapes)
    layers = []
    for n, d in g.nodes(data=True):
        c, shape, size = costs[n], d["shape"], d["size"]
        d.update(params=c.params, trainable=c.trainable, non_trainable=c.non_trainable, macs=c.macs)
        if d["op"] == "input":
            continue
        layers.append(LayerRow(
            name=n, op=d["op"], label=LAYERS[d["op"]].label(d["attrs"]), inputs=tuple(inputs_of(g, n)),
            shape=shape, size=size, params=c.params, trainable=c.trainable, non_trainable=c.non_trainable,
            macs=c.macs, line=d["line"], col=d["col"], scope=d["scope"],
        ))
    trainable = sum(r.trainable for r in layers)
    non_trainable = sum(r.non_trainable for r in layers)
    macs = sum(r.macs for r in layers)
    m.layers = layers
    m.totals = Totals(
        params=trainable + non_trainable, trainable_params=trainable, non_trainable_params=non_trainable,
        macs=macs, flops=2 * macs, weight_bytes=BYTES_PER_FLOAT * (trainable + non_trainable),
        activation_bytes=BYTES_PER_FLOAT * sum(d["size"] for _, d in g.nodes(data=True)),
    )


def _allowed(d: Diagnostic, sources: dict[str, str]) -> bool:
    """A warning the spec accepts on purpose: its line ends with a comment `# allow: CODE[, CODE]`."""
    text = sources.get(d.span.file, "") if d.span else ""
    lines = text.splitlines()
    if not d.span or not 0 < d.span.line <= len(lines) or "#" not in lines[d.span.line - 1]:
        return False
    comment = lines[d.span.line - 1].split("#", 1)[1]
    return "allow:" in comment and d.code in comment.split("allow:", 1)[1].replace(",", " ").split()


def check_limits(model: Model, max_params: int = MAX_PARAMS, max_memory: int = MAX_MEMORY, batch: int = 1) -> None:
    """Refuse, with a `too-large` CompileError, a network whose weights and activations would not fit.

    Costs are arithmetic on shapes, so this runs before anything is allocated; `compile`, `run` and
    `weights -o` call it. Activations count every layer's output at `batch`, as the summary does.
    """
    t = model.totals
    weights, acts = t.weight_bytes, batch * t.activation_bytes
    rows = model.layers
    if t.params > max_params:
        big = max(rows, key=lambda r: r.params)
        message = f"the network has {t.params:,} parameters, more than the limit of {max_params:,}"
        note = Note(f"the largest layer is `{big.name}` ({big.label}) with {big.params:,}")
        help_ = "check the layer sizes; raise the limit with `--max-params` if this is intended"
    elif weights + acts > max_memory:
        big = max(rows, key=lambda r: r.size)
        message = (f"the network needs {_bytes(weights + acts)} ({_bytes(weights)} of weights and {_bytes(acts)} "
                   f"of activations at batch {batch}), more than the limit of {_bytes(max_memory)}")
        note = Note(f"the largest activation is `{big.name}` ({big.label}): {fmt_shape(big.shape)}")
        help_ = "check the sizes and the batch; raise the limit with `--max-memory` if this is intended"
    else:
        return
    span = model.layer_graph.nodes[big.name]["span"]  # the layer most to blame
    raise CompileError([error("too-large", message, span, notes=[note], help=help_)], model.sources)


def parse_bytes(text: str) -> int:
    """`16G`, `512M`, `1024K`, `4096` (binary units: K = 1024) -> bytes; raises ValueError."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit() or len(digits) > 18:
        raise ValueError(f"expected a size such as 16G, 512M or 4096, got {text[:40]!r}")
    return int(digits) * scale


def read_source(path: str | Path) -> str:
    """Read a spec as UTF-8 text; raises CompileError for bytes that are not UTF-8, and
    cnndsl.safeio.FileProblem for a path that is not a readable regular file of at most MAX_SPEC_BYTES."""
    from . import safeio

    data = safeio.read_bytes(path, safeio.MAX_SPEC_BYTES, "spec")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        text = data[: e.start].decode("utf-8", "replace")
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        raise CompileError([error(
            "bad-encoding", f"byte 0x{data[e.start]:02x} at offset {e.start} is not UTF-8 text",
            Span(str(path), line, col, line, col + 1), help="a spec is a UTF-8 text file; is this the right file?",
        )], {str(path): data.decode("utf-8", "replace")}) from None


def compile_file(path: str | Path, input_shape: tuple[int, ...] | None = None, max_layers: int = ir.MAX_NODES,
                 allow_import=()) -> Model:
    """Check and cost a `.cnn` file. Raises CompileError (bad spec) or cnndsl.safeio.FileProblem (unreadable)."""
    return compile_text(read_source(path), str(path), input_shape, max_layers, allow_import)
