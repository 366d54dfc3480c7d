"""Analyses over the checked layer graph: receptive fields, floor truncation, memory, explain, diff.

Each module is one pure pass: it reads the graph's node attributes (`op`, `attrs`, `shape`, `params`...)
and returns facts and diagnostics; the driver (cnndsl.model, or the CLI for the options-dependent memory
figures) stores or shows them. None of them imports onnx, onnxruntime or torch.
"""
