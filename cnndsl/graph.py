"""The layer graph's contract: every node, edge and graph attribute, who writes it, and `verify`.

The graph builder (cnndsl.ir) makes a `LayerGraph` of layers (below: networkx.DiGraph's interface, as far as
cnndsl uses it, without importing networkx); the driver (cnndsl.model) adds the results of the passes;
backends and analyses only read. Nothing else is passed on the side: a stage that
needs a new fact declares it here first, with its writer.

Node ids are the layers' hierarchical names (`conv3_x.bottleneck2.conv1`); nodes are inserted in a
topological order that follows the source, so `list(g)` is the layer order (ONNX node order, table rows).
"""

from __future__ import annotations

import weakref

from .records import record


@record
class Attr:
    """One declared attribute: what it holds and which stage writes it."""

    doc: str
    writer: str


# NOTE: the tables below are the contract; `verify` checks every node and the graph against them, so an
# attribute written on the side fails the tests that build graphs.
NODE = {
    "op": Attr("the layer kind: a key of cnndsl.layers.LAYERS", "build"),
    "attrs": Attr("the kind's parameters, converted and with defaults applied (cnndsl.layers.resolve_params)",
                  "build"),
    "span": Attr("where the layer was written (cnndsl.diagnostics.Span)", "build"),
    "line": Attr("span.line, for tables and JSON", "build"),
    "col": Attr("span.col, for tables and JSON", "build"),
    "scope": Attr("the id of the innermost block, branch group, residual or named value holding it ('' at top)",
                  "build"),
    "calls": Attr("the block calls it was expanded from, outermost first: ((block name, call Span), ...)", "build"),
    "role": Attr("what a language construct made this node for: '' (a layer as written) or 'residual' "
                 "(the `add` closing a `residual { }`: input 0 is the body, input 1 the shortcut)", "build"),
    # written by the driver from the passes' results, once the graph has no errors
    "shape": Attr("output shape: H x W x C as (h, w, c), or (n,) for a vector", "model"),
    "size": Attr("elements of the output (product of shape)", "model"),
    "params": Attr("trainable + non_trainable", "model"),
    "trainable": Attr("learned parameters", "model"),
    "non_trainable": Attr("parameters not learned: batch-norm running statistics, kernels fixed by the spec", "model"),
    "macs": Attr("multiply-accumulates at batch 1", "model"),
    "rf": Attr("receptive field, effective stride and padding per axis (cnndsl.analyses.receptive.Field), or None "
               "where it does not apply (a vector network) or is declined (after deconv, upsample)", "model"),
}
EDGE = {
    "slot": Attr("the input position of the source in the target: 0..k-1 (concat order, residual body first)",
                 "build"),
}
GRAPH = {
    "name": Attr("the network's name (`network NAME`, else the file's stem)", "build"),
    "input": Attr("the input node's id, or None when the spec has no usable input", "build"),
    "outputs": Attr("the output node ids, in `output` order (else the last layer)", "build"),
    "scopes": Attr("scope id -> {kind: block|branches|residual|named|repeat, label, parent, file, line, col "
                   "(where it is written), block (the block's name, for block calls)}", "build"),
    "annotations": Attr("the shapes the spec states (`conv f=5 n=6 : 28x28x6`): [(node id, dims, Span of the "
                        "shape, calls)], one per expansion; checked by the driver", "build"),
    "dead": Attr("ids of layers downstream of a statement that failed: built, but given no shape "
                 "(errors were already reported)", "build"),
}
ROLES = ("", "residual")


class LayerGraph:
    """The layer graph the pipeline builds and reads: a directed graph with attributes, without networkx.

    Exactly the part of `networkx.DiGraph`'s interface that cnndsl uses, with the same meaning and the same
    storage (`graph`, `_node`, `_succ`, `_pred`: dicts in insertion order, an edge's attribute dict shared by
    both ends), so code written for one reads the other: `g.nodes[n]`, `g.nodes(data=True)`, `g.edges`,
    `g.edges(data="slot")`, `g.edges[u, v]`, `in_edges`, `predecessors`, `successors`, `out_degree`,
    `has_edge`, `len(g)`, `n in g`, `list(g)`. networkx takes a fifth of a second to import, more than
    `cnndsl check` of a whole network, so the pipeline never imports it; `to_networkx()` (what
    `Model.graph` gives API users) makes the real `networkx.DiGraph` when someone asks for one.
    """

    def __init__(self) -> None:
        self.graph: dict = {}
        self._node: dict[str, dict] = {}
        self._succ: dict[str, dict[str, dict]] = {}
        self._pred: dict[str, dict[str, dict]] = {}
        # the views over them, made once (the dicts are never replaced): `g.nodes[n]`, `g.succ[u]` run in loops
        self.nodes = _Nodes(self._node)
        self.edges = _Edges(self._succ)
        self.succ, self.pred = self._succ, self._pred

    # --- building (the graph builder only) ------------------------------------------------------------
    def add_node(self, n: str, **attr) -> None:
        if n in self._node:
            self._node[n].update(attr)
        else:
            self._node[n] = attr
            self._succ[n], self._pred[n] = {}, {}

    def add_edge(self, u: str, v: str, **attr) -> None:
        for n in (u, v):
            if n not in self._node:
                self.add_node(n)
        d = self._succ[u].get(v)
        if d is None:
            d = self._succ[u][v] = self._pred[v][u] = {}
        d.update(attr)

    def add_node_from(self, n: str, attr: dict, inputs) -> None:
        """Add a new node n with the attribute dict `attr` (kept, not copied) and an edge from each
        (source, slot) of `inputs`, in order: what add_node and add_edge do, for a node not yet in the graph
        whose sources are (cnndsl.ir.replay, which adds thousands on every keystroke)."""
        self._node[n] = attr
        self._succ[n], pred = {}, {}
        self._pred[n] = pred
        succ = self._succ
        for u, slot in inputs:
            pred[u] = succ[u][n] = {"slot": slot}

    def with_nodes(self, nodes: dict[str, dict]) -> LayerGraph:
        """A graph with these node attribute dicts (the same ids, in the same order) and this graph's
        edges, shared (as every stage after the build leaves them: read only); graph attributes copied."""
        g = LayerGraph()
        g.graph.update(self.graph)
        g._node, g._succ, g._pred = nodes, self._succ, self._pred
        g.nodes, g.edges = _Nodes(nodes), _Edges(self._succ)
        g.succ, g.pred = self._succ, self._pred
        got = _INPUTS.get(self)
        if got is not None:
            _INPUTS[g] = got
        return g

    def remove_nodes_from(self, nodes) -> None:
        for n in list(nodes):
            if n not in self._node:
                continue
            del self._node[n]
            for v in self._succ.pop(n):
                del self._pred[v][n]
            for u in self._pred.pop(n):
                del self._succ[u][n]

    # --- reading ------------------------------------------------------------------------------------
    def __iter__(self):
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, n) -> bool:
        try:
            return n in self._node
        except TypeError:
            return False

    def has_node(self, n: str) -> bool:
        return n in self

    def has_edge(self, u: str, v: str) -> bool:
        return u in self._succ and v in self._succ[u]

    def successors(self, n: str):
        return iter(self._succ[n])

    def predecessors(self, n: str):
        return iter(self._pred[n])

    def out_degree(self, n: str) -> int:
        return len(self._succ[n])

    def in_degree(self, n: str) -> int:
        return len(self._pred[n])

    def in_edges(self, n: str, data: bool | str = False, default=None):
        """(u, n) for each input u of n; with data=True (u, n, attrs), with data="key" (u, n, attrs.get(key))."""
        pred = self._pred[n]
        if data is True:
            return [(u, n, d) for u, d in pred.items()]
        if data:
            return [(u, n, d.get(data, default)) for u, d in pred.items()]
        return [(u, n) for u in pred]

    def number_of_nodes(self) -> int:
        return len(self._node)

    def number_of_edges(self) -> int:
        return sum(len(s) for s in self._succ.values())

    def to_networkx(self):
        """The same graph as a `networkx.DiGraph`: the same nodes and edges in the same order, with the same
        node, edge and graph attributes (new dicts holding the same values)."""
        import networkx as nx

        h = nx.DiGraph()
        h.graph.update(self.graph)
        h.add_nodes_from((n, d) for n, d in self._node.items())
        h.add_edges_from((u, v, d) for u, nbrs in self._succ.items() for v, d in nbrs.items())
        return h

    def __repr__(self) -> str:
        return f"<cnndsl.graph.LayerGraph: {len(self)} layers, {self.number_of_edges()} edges>"


class _Nodes:
    """`g.nodes`: `g.nodes[n]` is n's attribute dict; `g.nodes(data=True)` gives (n, attrs) pairs, and
    `g.nodes(data="key")` (n, attrs.get(key)); iterating gives the ids, in layer order."""

    __slots__ = ("_node",)

    def __init__(self, node: dict[str, dict]) -> None:
        self._node = node

    def __getitem__(self, n: str) -> dict:
        return self._node[n]

    def __iter__(self):
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, n) -> bool:
        return n in self._node

    def __call__(self, data: bool | str = False, default=None):
        if data is True:
            return self._node.items()
        if data:
            return [(n, d.get(data, default)) for n, d in self._node.items()]
        return list(self._node)

    def items(self):
        return self._node.items()

    def data(self, data: bool | str = True, default=None):
        return self(data, default)


class _Edges:
    """`g.edges`: iterating gives (u, v) pairs, source order; `g.edges[u, v]` is the edge's attribute dict;
    `g.edges(data=True)` gives (u, v, attrs), `g.edges(data="slot")` (u, v, attrs.get("slot"))."""

    __slots__ = ("_succ",)

    def __init__(self, succ: dict[str, dict[str, dict]]) -> None:
        self._succ = succ

    def __getitem__(self, e: tuple[str, str]) -> dict:
        u, v = e
        return self._succ[u][v]

    def __iter__(self):
        return ((u, v) for u, nbrs in self._succ.items() for v in nbrs)

    def __len__(self) -> int:
        return sum(len(s) for s in self._succ.values())

    def __contains__(self, e) -> bool:
        try:
            u, v = e
            return v in self._succ.get(u, ())
        except (TypeError, ValueError):
            return False

    def __call__(self, data: bool | str = False, default=None):
        if data is True:
            return [(u, v, d) for u, nbrs in self._succ.items() for v, d in nbrs.items()]
        if data:
            return [(u, v, d.get(data, default)) for u, nbrs in self._succ.items() for v, d in nbrs.items()]
        return list(self)


def ancestors(g: LayerGraph, n: str) -> set[str]:
    """Every node with a path to n (n excluded), as `networkx.ancestors` (g: a LayerGraph or a DiGraph)."""
    pred, seen, todo = g.pred, set(), [n]
    while todo:
        for u in pred[todo.pop()]:
            if u not in seen:
                seen.add(u)
                todo.append(u)
    seen.discard(n)
    return seen


def find_cycle(g: LayerGraph) -> list[tuple[str, str]]:
    """The edges of one directed cycle, in order, or [] when the graph is acyclic (g: a LayerGraph or a
    DiGraph)."""
    succ, state = g.succ, {}  # state 1: on the current path, 2: finished
    for root in g:
        if root in state:
            continue
        path, stack = [root], [iter(succ[root])]
        state[root] = 1
        while stack:
            for v in stack[-1]:
                if state.get(v) == 1:
                    cycle = path[path.index(v):]
                    return list(zip(cycle, [*cycle[1:], v], strict=True))
                if v not in state:
                    state[v] = 1
                    path.append(v)
                    stack.append(iter(succ[v]))
                    break
            else:
                state[path.pop()] = 2
                stack.pop()
    return []


def new_graph() -> LayerGraph:
    """An empty layer graph with every graph attribute set."""
    g = LayerGraph()
    g.graph.update(name=None, input=None, outputs=[], scopes={}, dead=set(), annotations=[])
    return g


_INPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _slot(e) -> int:
    return e[1]["slot"]


def inputs_map(g: LayerGraph) -> dict[str, list[str]]:
    """Every node's inputs in slot order (`inputs_of` for all nodes at once), made once per graph: the
    passes and analyses read them many times, and they run once the build has finished the graph, whose
    structure then never changes (g: a LayerGraph or a DiGraph)."""
    got = _INPUTS.get(g)
    if got is None:
        got = {n: list(p) if len(p) < 2 else [u for u, _ in sorted(p.items(), key=_slot)]
               for n, p in g._pred.items()}  # NOTE: the adjacency dict itself: the views cost more than the passes
        _INPUTS[g] = got
    return got


def inputs_of(g: LayerGraph, n: str) -> list[str]:
    """The node's inputs in slot order (concat order; a residual's body before its shortcut)."""
    pred = g.pred[n]  # a LayerGraph's dict or a networkx.DiGraph's view: both map input -> edge attributes
    if len(pred) < 2:
        return list(pred)
    return [u for u, _ in sorted(pred.items(), key=lambda e: e[1]["slot"])]


def verify(g: LayerGraph) -> None:  # or a networkx.DiGraph (Model.graph)
    """Check the graph invariants every pass relies on; raise AssertionError naming the broken one.

    One input node, acyclic, arity and slots 0..k-1 per node, node order topological, outputs exist, and
    no attribute outside the contract above.
    """
    from .layers import LAYERS

    assert set(g.graph) <= set(GRAPH), f"undeclared graph attributes: {sorted(set(g.graph) - set(GRAPH))}"
    inputs = [n for n, d in g.nodes(data=True) if d["op"] == "input"]
    assert len(inputs) == 1, f"expected exactly one input node, found {inputs}"
    cycle = find_cycle(g)
    assert not cycle, f"the layer graph has a cycle: {cycle}"
    order = {n: i for i, n in enumerate(g)}
    node_attrs, edge_attrs, pred = NODE.keys(), EDGE.keys(), g.pred
    for n, d in g.nodes(data=True):  # NOTE: dict views, not sets made per node: this runs on every compile
        assert d.keys() <= node_attrs, f"{n}: undeclared node attributes {sorted(d.keys() - node_attrs)}"
        assert d.get("role", "") in ROLES, f"{n}: unknown role {d.get('role')!r}"
        kind = LAYERS[d["op"]]
        preds = pred[n]
        for e in preds.values():
            assert e.keys() <= edge_attrs, f"{n}: undeclared edge attributes {sorted(e.keys() - edge_attrs)}"
        lo, hi = kind.arity
        assert lo <= len(preds) and (hi is None or len(preds) <= hi), f"{n}: {len(preds)} inputs for `{d['op']}`"
        if len(preds) > 1:
            assert sorted(e["slot"] for e in preds.values()) == list(range(len(preds))), \
                f"{n}: input slots are not 0..k-1"
        else:
            assert all(e["slot"] == 0 for e in preds.values()), f"{n}: input slots are not 0..k-1"
        at = order[n]
        assert all(order[u] < at for u in preds), f"{n}: an input comes after it in node order"
    for o in g.graph["outputs"]:
        assert o in g, f"output {o} is not a node"
