"""Analyses over the checked layer graph: receptive fields, floor truncation, memory, explain, diff.

Each module is one pure pass: it reads the graph's node attributes (`op`, `attrs`, `shape`, `params`...)
and returns facts and diagnostics; the driver (cnndsl.model, or the CLI for the options-dependent memory
figures) stores or shows them. None of them imports onnx, onnxruntime or torch.
"""

from __future__ import annotations

import weakref

from ..graph import LayerGraph

_INPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inputs(g: LayerGraph) -> dict[str, list[str]]:
    """Every node's inputs in slot order (cnndsl.ir.inputs_of for all nodes at once), computed once per
    graph: the analyses read them many times, and a checked graph's structure never changes."""
    got = _INPUTS.get(g)
    if got is None:
        pred = g._pred  # NOTE: the adjacency dict itself; the views cost more than the analyses
        got = {n: [u for u, _ in sorted(pred[n].items(), key=lambda e: e[1]["slot"])] for n in g}
        _INPUTS[g] = got
    return got
