"""Graph build: AST -> layer graph (cnndsl.graph.LayerGraph), with blocks expanded and names assigned.

The builder comes apart along its jobs, each a module a newcomer can read on its own:

  core.py      the build's state: the graph being made, reporting, adding and naming nodes, scopes
  expr.py      expressions: numbers, sizes, words, lists, block parameters, arithmetic
  args.py      a layer's arguments checked against its kind's registry entry -> resolved attrs
  defaults.py  `defaults KIND param=value`, per file and per block body
  imports.py   `import` of bundled libraries and files; block definitions
  expand.py    statements, chains, blocks, repeats, residuals and branches -> layers (the entry, `build`)

The graph it makes follows the contract in cnndsl.graph (attributes, who writes each, `verify`); nothing
here looks at shapes: the passes (cnndsl.passes) add shapes and costs.
"""

from __future__ import annotations

from ..graph import inputs_of, verify
from .core import MAX_NODES
from .expand import build
from .imports import LIB_DIR

__all__ = ["LIB_DIR", "MAX_NODES", "build", "inputs_of", "verify"]
