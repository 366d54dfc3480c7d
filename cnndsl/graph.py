"""The layer graph's contract: every node, edge and graph attribute, who writes it, and `verify`.

The graph builder (cnndsl.build) makes a `networkx.DiGraph` of layers; the driver (cnndsl.model) adds the
results of the passes; backends and analyses only read. Nothing else is passed on the side: a stage that
needs a new fact declares it here first, with its writer.

Node ids are the layers' hierarchical names (`conv3_x.bottleneck2.conv1`); nodes are inserted in a
topological order that follows the source, so `list(g)` is the layer order (ONNX node order, table rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
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
    "scopes": Attr("scope id -> {kind: block|branches|residual|named|repeat, label, parent, line, col, "
                   "block (the block's name, for block calls)}", "build"),
    "annotations": Attr("the shapes the spec states (`conv f=5 n=6 : 28x28x6`): [(node id, dims, Span of the "
                        "shape, calls)], one per expansion; checked by the driver", "build"),
    "dead": Attr("ids of layers downstream of a statement that failed: built, but given no shape "
                 "(errors were already reported)", "build"),
}
ROLES = ("", "residual")


def new_graph() -> nx.DiGraph:
    """An empty layer graph with every graph attribute set."""
    g = nx.DiGraph()
    g.graph.update(name=None, input=None, outputs=[], scopes={}, dead=set(), annotations=[])
    return g


def inputs_of(g: nx.DiGraph, n: str) -> list[str]:
    """The node's inputs in slot order (concat order; a residual's body before its shortcut)."""
    pred = g._pred[n]  # NOTE: the adjacency dict itself: the edge views cost more than the passes using them
    return list(pred) if len(pred) < 2 else sorted(pred, key=lambda u: pred[u]["slot"])


def verify(g: nx.DiGraph) -> None:
    """Check the graph invariants every pass relies on; raise AssertionError naming the broken one.

    One input node, acyclic, arity and slots 0..k-1 per node, node order topological, outputs exist, and
    no attribute outside the contract above.
    """
    from .layers import LAYERS

    assert set(g.graph) <= set(GRAPH), f"undeclared graph attributes: {sorted(set(g.graph) - set(GRAPH))}"
    inputs = [n for n, d in g.nodes(data=True) if d["op"] == "input"]
    assert len(inputs) == 1, f"expected exactly one input node, found {inputs}"
    order = {n: i for i, n in enumerate(g)}
    node_keys, edge_keys, pred = set(NODE), set(EDGE), g._pred  # NOTE: the adjacency dicts, as in inputs_of
    for n, d in g.nodes(data=True):
        extra = d.keys() - node_keys
        assert not extra, f"{n}: undeclared node attributes {sorted(extra)}"
        assert d.get("role", "") in ROLES, f"{n}: unknown role {d.get('role')!r}"
        kind = LAYERS[d["op"]]
        preds = pred[n]
        for e in preds.values():
            assert e.keys() <= edge_keys, f"{n}: undeclared edge attributes {sorted(e.keys() - edge_keys)}"
        lo, hi = kind.arity
        assert lo <= len(preds) and (hi is None or len(preds) <= hi), f"{n}: {len(preds)} inputs for `{d['op']}`"
        assert sorted(e["slot"] for e in preds.values()) == list(range(len(preds))), \
            f"{n}: input slots are not 0..k-1"
        # every input before its layer in node order: the order is topological, so the graph is acyclic
        assert all(order[u] < order[n] for u in preds), \
            f"the layer graph has a cycle: {nx.find_cycle(g)}" if not nx.is_directed_acyclic_graph(g) else \
            f"{n}: an input comes after it in node order"
    for o in g.graph["outputs"]:
        assert o in g, f"output {o} is not a node"
