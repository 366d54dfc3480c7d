"""cnndsl: write down, check, cost, draw and run convolutional network architectures.

    import cnndsl
    m = cnndsl.compile_text("input 32x32x3\\nconv f=5 s=1 n=6 -> pool f=2 s=2 -> fc 120")
    m.totals.params, m.layers[0].shape, m.graph   # networkx.DiGraph of the layers
"""

from __future__ import annotations

from .diagnostics import CompileError, Diagnostic, Span
from .layers import LAYERS
from .model import LayerRow, Model, Totals, compile_file, compile_text

__version__ = "0.1.0"

__all__ = [
    "LAYERS", "CompileError", "Diagnostic", "LayerRow", "Model", "Span", "Totals", "__version__",
    "compile_file", "compile_text",
]
