"""Folding: which scopes of the layer graph are shown whole and which stand as one entry with their
totals. The summary table and the diagrams share it, so `--depth` and `--collapse` mean the same in both.

A scope is a block call, residual, branches, repeat or named chain (g.graph["scopes"]). Folding a scope
stands all its layers for one entry; a chain of identical folded blocks (ResNet-152's 35 `bottleneck(n=256)`)
becomes one entry `x 35`, as the papers' tables write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..graph import LayerGraph

FOLDABLE = {"block", "residual", "branches"}  # what --collapse may fold; named values and repeats stay open


def scope_chain(scopes: dict, s: str) -> list[str]:
    """The scope and its ancestors, outermost first ("" is the top level and is not included)."""
    out = []
    while s:
        out.append(s)
        s = scopes[s]["parent"]
    return out[::-1]


def scope_title(scopes: dict, s: str) -> str:
    """`bottleneck(n=64)`, or `conv2_x = bottleneck_stage(n=64, blocks=3)` when the user named the value."""
    sc = scopes[s]
    local = s.rsplit(".", 1)[-1]
    auto = sc.get("block") or sc["label"].split(" ", 1)[0]
    if local == sc["label"] or re.fullmatch(re.escape(auto) + r"\d+", local):
        return sc["label"]
    return f"{local} = {sc['label']}"


@dataclass
class Fold:
    rep: dict[str, str]  # node id -> the id it is shown as (itself, or the scope it is folded into)
    folded: dict[str, list[str]]  # folded scope id -> its layers, in node order
    times: dict[str, int]  # folded scope id -> how many identical blocks in a row it stands for

    def is_folded(self, n: str) -> bool:
        # NOTE: not `rep[n] != n`: a residual's or branches' merge node has its scope's id
        return self.rep[n] in self.folded

    def totals(self, g: LayerGraph, s: str) -> tuple[tuple[int, ...], int, int]:
        """A folded scope's (output shape, parameters, MACs); the output is its last layer that feeds on."""
        members = self.folded[s]
        inside = set(members)
        outs = g.graph.get("outputs", [])
        exits = [n for n in members if n in outs or any(w not in inside for w in g.successors(n))]
        shape = g.nodes[(exits or members)[-1]]["shape"]
        return shape, sum(g.nodes[n]["params"] for n in members), sum(g.nodes[n]["macs"] for n in members)


def fold(g: LayerGraph, collapse: bool = False, depth: int | None = None) -> Fold:
    """Fold each scope deeper than `depth` levels (0: every top-level scope), and with `collapse` the
    smallest units the spec names: a block call with no block call inside (a ResNet bottleneck, not the
    stage made of them), or a residual/branches outside any block."""
    scopes = g.graph.get("scopes", {})
    holds_block = {a for s, d in scopes.items() if d["kind"] == "block" for a in scope_chain(scopes, d["parent"])}

    def folds(s: str, level: int) -> bool:
        unit = scopes[s]["kind"] in FOLDABLE and s not in holds_block
        return (collapse and unit) or (depth is not None and level > depth)

    rep, folded = {}, {}
    for n, d in g.nodes(data=True):
        rep[n] = n
        for level, s in enumerate(scope_chain(scopes, d["scope"]), 1):
            if folds(s, level):
                rep[n] = s
                folded.setdefault(s, []).append(n)
                break
    return Fold(rep, folded, _merge_runs(g, scopes, rep, folded))


def _merge_runs(g: LayerGraph, scopes: dict, rep: dict, folded: dict) -> dict[str, int]:
    """Fold a chain of identical folded blocks into its first one. Updates `rep` and `folded`; returns
    the run lengths."""
    preds: dict[str, set[str]] = {}
    succs: dict[str, set[str]] = {}
    for u, w in g.edges:
        if rep[u] != rep[w]:
            succs.setdefault(rep[u], set()).add(rep[w])
            preds.setdefault(rep[w], set()).add(rep[u])
    times = {s: 1 for s in folded}
    # the same label is not enough: a shape-aware block adds its projection only where the shape changes,
    # so only blocks with the same layers (kinds and parameters) in the same order are one run
    sig = {s: [(g.nodes[n]["op"], g.nodes[n]["attrs"]) for n in folded[s]] for s in folded}
    head = last = None
    for s in list(folded):
        same = last is not None and all(scopes[s][k] == scopes[last][k] for k in ("label", "kind", "parent")) \
            and sig[s] == sig[last]
        if same and succs.get(last) == {s} and preds.get(s) == {last}:
            for n in folded[s]:
                rep[n] = head
            folded[head] += folded.pop(s)
            times[head] += times.pop(s)
        else:
            head = s
        last = s
    return times
