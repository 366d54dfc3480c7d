"""Analyses over the checked layer graph: receptive fields, floor truncation, memory, explain, diff.

Each module is one pure pass: it reads the graph's node attributes (`op`, `attrs`, `shape`, `params`...)
and returns facts and diagnostics; the driver (cnndsl.model, or the CLI for the options-dependent memory
figures) stores or shows them. None of them imports onnx, onnxruntime or torch.
"""

from __future__ import annotations

from ..graph import inputs_map as inputs

__all__ = ["inputs"]  # every node's inputs in slot order, made once per graph (cnndsl.graph.inputs_map)
