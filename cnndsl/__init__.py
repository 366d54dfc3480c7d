"""cnndsl: write down, check, cost, draw and run convolutional network architectures.

    import cnndsl
    m = cnndsl.compile_text("input 32x32x3\\nconv f=5 s=1 n=6 -> pool f=2 s=2 -> fc 120")
    m.totals.params, m.layers[0].shape, m.graph   # networkx.DiGraph of the layers (made on first use)
    print(m.summary()); m.render("net.png"); m.to_onnx()

The names below are imported on first use, so that `cnndsl --help` and `--version` start fast.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs `--help` 20-40 ms
__version__ = "0.1.0"

_LAZY = {
    "CompileError": "diagnostics", "Diagnostic": "diagnostics", "Span": "diagnostics", "LAYERS": "layers",
    "LayerRow": "model", "Model": "model", "Totals": "model", "compile_file": "model", "compile_text": "model",
}

__all__ = [
    "LAYERS", "CompileError", "Diagnostic", "LayerRow", "Model", "Span", "Totals", "__version__",
    "compile_file", "compile_text",
]

if TYPE_CHECKING:
    from .diagnostics import CompileError, Diagnostic, Span
    from .layers import LAYERS
    from .model import LayerRow, Model, Totals, compile_file, compile_text


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnndsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
