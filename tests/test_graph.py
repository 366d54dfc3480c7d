"""The layer graph (cnndsl.graph.LayerGraph) against networkx, and `Model.graph`, the networkx.DiGraph the API
promises: the same nodes, edges and attributes in the same order."""

from __future__ import annotations

import networkx as nx
import pytest
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.graph import LayerGraph, ancestors, find_cycle, inputs_of, verify

NODES = st.sampled_from("abcdefgh")
OPS = st.lists(st.one_of(
    st.tuples(st.just("node"), NODES, st.integers(0, 3)),
    st.tuples(st.just("edge"), NODES, NODES, st.integers(0, 3)),
    st.tuples(st.just("remove"), st.lists(NODES, max_size=3)),
), max_size=40)


def _both(ops) -> tuple[LayerGraph, nx.DiGraph]:
    ours, theirs = LayerGraph(), nx.DiGraph()
    for op in ops:
        for g in (ours, theirs):
            if op[0] == "node":
                g.add_node(op[1], x=op[2])
            elif op[0] == "edge":
                g.add_edge(op[1], op[2], slot=op[3])
            else:
                g.remove_nodes_from(op[1])
    return ours, theirs


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_the_layer_graph_reads_as_networkx_does(ops):
    g, h = _both(ops)
    assert list(g) == list(h) and len(g) == len(h) and list(g.nodes) == list(h.nodes)
    assert list(g.nodes(data=True)) == list(h.nodes(data=True))
    assert list(g.nodes(data="x")) == list(h.nodes(data="x"))
    assert list(g.edges) == list(h.edges) and len(g.edges) == len(h.edges)
    assert list(g.edges(data=True)) == list(h.edges(data=True))
    assert list(g.edges(data="slot")) == list(h.edges(data="slot"))
    for n in "abcdefghz":
        assert (n in g) == (n in h) and g.has_node(n) == h.has_node(n)
        for m in "abcdefgh":
            assert g.has_edge(n, m) == h.has_edge(n, m) and ((n, m) in g.edges) == ((n, m) in h.edges)
        if n not in h:
            continue
        assert g.nodes[n] == h.nodes[n]
        assert list(g.successors(n)) == list(h.successors(n))
        assert list(g.predecessors(n)) == list(h.predecessors(n))
        assert (g.out_degree(n), g.in_degree(n)) == (h.out_degree(n), h.in_degree(n))
        assert list(g.in_edges(n)) == list(h.in_edges(n))
        assert list(g.in_edges(n, data=True)) == list(h.in_edges(n, data=True))
        assert list(g.in_edges(n, data="slot")) == list(h.in_edges(n, data="slot"))
        assert dict(g.succ[n]) == dict(h.succ[n]) and dict(g.pred[n]) == dict(h.pred[n])
        assert ancestors(g, n) == nx.ancestors(h, n)
        for u, v in g.edges:
            assert g.edges[u, v] == h.edges[u, v]
    cycle = find_cycle(g)
    assert bool(cycle) != nx.is_directed_acyclic_graph(h)
    if cycle:  # a closed walk along real edges
        assert all(h.has_edge(u, v) for u, v in cycle)
        assert all(cycle[i][1] == cycle[(i + 1) % len(cycle)][0] for i in range(len(cycle)))
    assert list(g.to_networkx().edges(data=True)) == list(h.edges(data=True))


def test_an_edge_holds_one_attribute_dict_for_both_ends():
    g = LayerGraph()
    g.add_edge("a", "b", slot=0)
    g.add_edge("a", "b", slot=1)  # one edge per pair, as in a DiGraph: the second call updates it
    assert g.succ["a"]["b"] is g.pred["b"]["a"] and g.edges["a", "b"] == {"slot": 1} and len(g.edges) == 1


def test_verify_names_a_cycle():
    m = cnndsl.compile_text("input 8x8x3\nconv f=3 n=4 -> relu -> fc 2")
    g = m.layer_graph
    g.add_edge("fc1", "conv1", slot=1)
    cycle = r"cycle: \[\('conv1', 'relu1'\), \('relu1', 'fc1'\), \('fc1', 'conv1'\)\]"
    with pytest.raises(AssertionError, match=cycle):
        verify(g)


@pytest.mark.parametrize("name", ["lenet5", "inception_module", "resnet50", "densenet121", "shufflenet_v2_x1_0"])
def test_model_graph_is_the_same_graph_as_a_networkx_digraph(name):
    m = cnndsl.compile_file(SPECS / f"{name}.cnn")
    g, h = m.layer_graph, m.graph
    assert isinstance(h, nx.DiGraph) and m.graph is h  # made once
    assert list(h) == list(g) and list(h.edges(data=True)) == list(g.edges(data=True))
    assert list(h.nodes(data=True)) == list(g.nodes(data=True)) and h.graph == g.graph
    assert nx.is_directed_acyclic_graph(h) and list(nx.topological_sort(h))[0] == g.graph["input"]
    verify(h)  # the contract holds for either
    assert all(inputs_of(h, n) == inputs_of(g, n) for n in g)
    out = g.graph["outputs"][0]
    assert nx.ancestors(h, out) == ancestors(g, out) == set(g) - {out}  # pruning left only what reaches it
