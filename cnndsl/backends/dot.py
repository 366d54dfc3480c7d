"""DOT backend: Model -> Graphviz DOT text, written here in a stable order, and -> SVG/PNG/PDF through `dot`.

Layers are boxes in the notes' notation (`conv 5x5, s=1, n=6`, output shape, parameters), coloured by
their kind's group; merges are small circles (add ⊕, concat ‖, mul ⊗); the scopes of the graph (blocks,
residuals, branches, repeats, named chains) are nested clusters, or single nodes with their totals when
folded. Only `render_file` needs Graphviz: it runs `dot` through cnndsl.safeio (time bound, dies with cnndsl).
"""

from __future__ import annotations

import html
import zlib
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from ..layers import LAYERS
from ..model import Model
from ..util import fmt_shape, si
from .fold import FOLDABLE, Fold, fold, scope_chain, scope_title  # noqa: F401 - FOLDABLE is part of this module's API

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR", "BT", "RL")
FONT = "Helvetica,Arial,sans-serif"
INSTALL_HINT = "install Graphviz (apt-get install graphviz, brew install graphviz) to render SVG/PNG/PDF"

# Fill colours per layer group (cnndsl.layers.LayerKind.group); an unknown group gets a stable pick
# from FALLBACK, by CRC-32 of its name (Python's hash() is salted per process).
GROUP_COLORS = {
    "io": "#fde3c8", "conv": "#cfe2f3", "pool": "#f4cccc", "norm": "#fff2cc", "act": "#d9ead3",
    "fc": "#d9d2e9", "shape": "#eeeeee", "merge": "#ffffff", "block": "#e4e9f2",
}
FALLBACK = ("#d0e0e3", "#ead1dc", "#fce5cd", "#e6f2d9", "#e1d5e7", "#dae8fc", "#f8cecc", "#fff2cc")
GROUP_NAMES = {"io": "input", "act": "activation"}  # legend wording where the group name is terse
SKIP_COLOR = "#b45f06"
TEXT_DIM = "#555555"

# Cluster look per scope kind: (border colour, fill colour or None, border style).
SCOPE_STYLE = {
    "block": ("#6d87a8", "#f6f8fb", "solid"),
    "residual": ("#c9955b", "#fdf8f1", "solid"),
    "branches": ("#7fa37a", "#f5faf3", "solid"),
    "named": ("#9a9a9a", None, "dashed"),
    "repeat": ("#9a9a9a", None, "dotted"),
}


class FormatError(ValueError):
    """An output file name whose suffix is not a format we can write."""


def group_color(group: str) -> str:
    return GROUP_COLORS.get(group) or FALLBACK[zlib.crc32(group.encode()) % len(FALLBACK)]


def output_format(path: str | Path) -> str:
    """`net.svg` -> 'svg'; raises FormatError for anything but .svg, .png, .pdf, .dot."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        what = f"`.{fmt}`" if fmt else "no suffix"
        raise FormatError(f"cannot tell the output format of `{path}` ({what}): use .svg, .png, .pdf or .dot")
    return fmt


# --- which scopes are drawn as clusters and which are folded into one node (cnndsl.backends.fold) --------


@dataclass
class _View:
    g: nx.DiGraph
    scopes: dict
    fold: Fold
    order: dict[str, int]


def _view(g: nx.DiGraph, collapse: bool, depth: int | None) -> _View:
    return _View(g, g.graph.get("scopes", {}), fold(g, collapse, depth), {n: i for i, n in enumerate(g)})


# --- labels ---------------------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _q(text: str) -> str:
    """A DOT quoted string: node ids hold dots, so every id is quoted."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _table(title: str, *rows: str) -> str:
    cells = [f'<TR><TD><B>{_e(title)}</B></TD></TR>']
    cells += [f'<TR><TD><FONT POINT-SIZE="9" COLOR="{TEXT_DIM}">{_e(r)}</FONT></TD></TR>' for r in rows if r]
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{"".join(cells)}</TABLE>>'


def _facts(shape, params: int, macs: int | None = None) -> str:
    parts = [fmt_shape(shape)]
    if params:
        parts.append(f"{si(params)} params")
    if macs:
        parts.append(f"{si(macs)} MACs")
    return " · ".join(parts)


def _attrs(**kw) -> str:
    """`k="v", ...` for the values that are not None; an HTML-like label `<...>` goes in unquoted."""
    return ", ".join(f"{k}={v if isinstance(v, str) and v.startswith('<<') else _q(v)}"
                     for k, v in kw.items() if v is not None)


def _stmt(ident: str, **kw) -> str:
    return f"{_q(ident)} [{_attrs(**kw)}];"


def _layer_node(n: str, d: dict, is_output: bool) -> str:
    kind = LAYERS[d["op"]]
    label = kind.label(d["attrs"])
    tip = f"{n}: {label} -> {fmt_shape(d['shape'])}, {d['params']:,} params, {d['macs']:,} MACs"
    ring = 2 if is_output else None  # the network's outputs get a double border
    if kind.symbol:
        return _stmt(n, label=kind.symbol, shape="circle", fixedsize="true", width=0.36, fontsize=15,
                     style="filled", fillcolor="#ffffff", penwidth=1.2, tooltip=tip, peripheries=ring)
    return _stmt(n, label=_table(label, _facts(d["shape"], d["params"])), fillcolor=group_color(kind.group),
                 style="filled,bold" if d["op"] == "input" else None, tooltip=tip, peripheries=ring)


def _folded_node(v: _View, s: str) -> str:
    g, members = v.g, v.fold.folded[s]
    outs = g.graph.get("outputs", [])
    out_shape, params, macs = v.fold.totals(g, s)
    sc = v.scopes[s]
    kind = sc["kind"] if sc["kind"] != "named" else "chain"
    k = v.fold.times[s]
    count = f"{kind}{f' × {k}' if k > 1 else ''} · {len(members)} layer{'s' if len(members) != 1 else ''}"
    title = scope_title(v.scopes, s) + (f" × {k}" if k > 1 else "")
    tip = f"{s}: {title} ({count}) -> {fmt_shape(out_shape)}, {params:,} params, {macs:,} MACs"
    return _stmt(s, label=_table(title, count, _facts(out_shape, params, macs)), fillcolor=GROUP_COLORS["block"],
                 style="rounded,filled,bold", tooltip=tip, peripheries=2 if any(n in outs for n in members) else None)


def _in_shortcut(v: _View, n: str) -> bool:
    """Whether layer `n` is on a residual's projection shortcut (`<residual>.shortcut[...]`)."""
    for s in [v.g.nodes[n]["scope"]] + [n]:
        head, _, tail = s.rpartition(".")
        if tail == "shortcut" and v.scopes.get(head, {}).get("kind") == "residual":
            return True
    return False


def _is_skip(v: _View, u: str, w: str, slot: int) -> bool:
    """An edge of a residual's shortcut path: the identity edge into its add, or into, along and out of
    its projection shortcut."""
    if v.g.nodes[w]["role"] == "residual" and slot == 1:
        return True
    return _in_shortcut(v, w)


def _legend(m: Model, groups: list[str], merges: list[str], skips: bool, folded: bool) -> str:
    t = m.totals
    head = (f"<B>{_e(m.name)}</B>   input {fmt_shape(m.input_shape)}   ·   {t.params:,} parameters   ·   "
            f"{t.macs:,} MACs")
    swatch = '<TD BGCOLOR="{}" BORDER="1" COLOR="#888888"> {} </TD>'
    cells = [swatch.format(group_color(gr), _e(GROUP_NAMES.get(gr, gr))) for gr in groups]
    if folded:
        cells.append(swatch.format(GROUP_COLORS["block"], "folded block"))
    cells += [f'<TD> {LAYERS[op].symbol} {op} </TD>' for op in merges]
    if skips:
        cells.append(f'<TD><FONT COLOR="{SKIP_COLOR}">- - - skip</FONT></TD>')
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2"><TR><TD ALIGN="LEFT">{head}</TD></TR>'
            f'<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" CELLPADDING="2"><TR>'
            f'{"".join(cells)}</TR></TABLE></TD></TR></TABLE>>')


# --- the DOT text ---------------------------------------------------------------------------------


def to_dot(m: Model, collapse: bool = False, depth: int | None = None, rankdir: str = "TB",
           legend: bool = True) -> str:
    """The diagram as DOT text: the same model and options always give the same bytes.

    Args:
        collapse: fold each innermost block call (and each residual or branches outside any block) into
            one node with its totals: ResNet's bottlenecks, GoogLeNet's Inception modules.
        depth: fold the scopes nested deeper than `depth` (0 folds the top-level ones; None folds none).
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    g = m.graph
    v = _view(g, collapse, depth)
    outs = set(g.graph.get("outputs", []))

    # What each cluster holds, as (first node order, kind, id) so siblings come out in source order.
    items: dict[str, list[tuple[int, str, str]]] = {}
    opened: set[str] = set()  # clusters and folded scopes already placed
    clusters: list[str] = []
    for n, d in g.nodes(data=True):
        drawn = v.fold.rep[n]
        if v.fold.is_folded(n):
            if drawn in opened:
                continue
            opened.add(drawn)
        home = v.scopes[drawn]["parent"] if v.fold.is_folded(n) else d["scope"]
        items.setdefault(home, []).append((v.order[n], "node", drawn))
        for s in reversed(scope_chain(v.scopes, home)):
            if s in opened:
                break
            opened.add(s)
            clusters.append(s)
            items.setdefault(v.scopes[s]["parent"], []).append((v.order[n], "cluster", s))

    # newrank: rank constraints may span clusters (the branches' heads below)
    graph = _attrs(rankdir=rankdir, fontname=FONT, fontsize=11, nodesep=0.3, ranksep=0.35, newrank="true",
                   labelloc="b", labeljust="l", tooltip=m.name)
    node = _attrs(shape="box", style="rounded,filled", fontname=FONT, fontsize=11, color="#444444", penwidth=0.8,
                  margin="0.12,0.05")
    edge = _attrs(fontname=FONT, fontsize=8, fontcolor="#666666", color="#555555", arrowsize=0.6, penwidth=0.9)
    lines = [f"digraph {_q(m.name)} {{", f"  graph [{graph}];", f"  node [{node}];", f"  edge [{edge}];"]

    def emit(scope: str, indent: str) -> None:
        for _, what, ident in sorted(items.get(scope, [])):
            if what == "cluster":
                sc = v.scopes[ident]
                color, fill, style = SCOPE_STYLE.get(sc["kind"], ("#9a9a9a", None, "solid"))
                styles = ["rounded"] + (["filled"] if fill else []) + ([style] if style != "solid" else [])
                lines.append(f"{indent}subgraph {_q('cluster_' + ident)} {{")
                frame = _attrs(label=scope_title(v.scopes, ident), style=",".join(styles), color=color, fillcolor=fill,
                               fontcolor=color, fontsize=10, labeljust="l", labelloc="t", penwidth=1.1, tooltip=ident)
                lines.append(f"{indent}  graph [{frame}];")
                emit(ident, indent + "  ")
                lines.append(f"{indent}}}")
            elif ident in v.fold.folded:
                lines.append(indent + _folded_node(v, ident))
            else:
                lines.append(indent + _layer_node(ident, g.nodes[ident], ident in outs))

    emit("", "  ")

    edges: dict[tuple[str, str], tuple[tuple[int, int, int], str]] = {}
    for u, w, slot in g.edges(data="slot"):
        ru, rw = v.fold.rep[u], v.fold.rep[w]
        if ru == rw:
            continue
        key = (v.order[w], slot or 0, v.order[u])
        if (ru, rw) in edges and edges[(ru, rw)][0] <= key:
            continue
        shape = fmt_shape(g.nodes[u]["shape"])
        skip = not v.fold.is_folded(w) and _is_skip(v, u, w, slot or 0)
        style = _attrs(label=shape, tooltip=f"{u} -> {w}: {shape}", style="dashed" if skip else None,
                       color=SKIP_COLOR if skip else None, fontcolor=SKIP_COLOR if skip else None,
                       penwidth=1.4 if skip else None)
        edges[(ru, rw)] = (key, f"  {_q(ru)} -> {_q(rw)} [{style}];")
    lines += [line for _, line in sorted(edges.values())]

    # Inception-style branches side by side: their first layers share a rank (newrank lets a rank
    # constraint span clusters); otherwise dot moves a short branch to whichever rank is emptier.
    rep_order: dict[str, int] = {}
    for n in g:
        rep_order.setdefault(v.fold.rep[n], v.order[n])
    for s in clusters:
        if v.scopes[s]["kind"] != "branches":
            continue
        inside = {n for n in g if s in scope_chain(v.scopes, g.nodes[n]["scope"])}
        heads = {v.fold.rep[n] for n in inside if all(u not in inside for u in g.predecessors(n))}
        if len(heads) > 1:
            heads = sorted(heads, key=rep_order.get)
            lines.append(f"  {{rank=same; {' '.join(_q(h) for h in heads)}}}")

    if legend:
        drawn_ops = [g.nodes[n]["op"] for n in g if not v.fold.is_folded(n)]
        known = list(GROUP_COLORS)
        groups = sorted({LAYERS[op].group for op in drawn_ops} - {"merge"},
                        key=lambda gr: (known.index(gr) if gr in known else len(known), gr))
        merges = [op for op, k in LAYERS.items() if k.symbol and op in drawn_ops]
        skips = any("dashed" in line for _, line in edges.values())
        lines.append(f"  label={_legend(m, groups, merges, skips, bool(v.fold.folded))};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- files ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """What render_file wrote: `path` is a `.dot` file instead of the image when `dot` is missing."""

    path: Path
    format: str
    image: bool  # False: Graphviz's `dot` was not found and only the DOT text was written


def write_atomic(path, data: bytes) -> None:
    """Write through a temporary file in the same folder and a rename (or into a device), see cnndsl.safeio."""
    from .. import safeio

    safeio.write_bytes(path, data)


class RenderError(RuntimeError):
    """Graphviz's `dot` ran but failed."""


def render_file(m: Model, path, collapse: bool = False, depth: int | None = None,
                rankdir: str = "TB", timeout: float = 60) -> Rendered:
    """Draw `m` to `path` (a path or a checked cnndsl.safeio.Target); the suffix picks the format (.svg, .png,
    .pdf or .dot).

    Without Graphviz's `dot` program the DOT text is written beside `path` (same name, `.dot`) and the
    result says `image=False`. Raises FormatError for an unknown suffix, OSError for an unwritable path,
    RenderError when `dot` fails or runs past `timeout` seconds (it is killed; it also dies with cnndsl).
    """
    import shutil

    from .. import safeio

    target = safeio.as_target(path)
    path = target.path
    fmt = output_format(path) if not target.stream or path.suffix else "svg"
    text = to_dot(m, collapse=collapse, depth=depth, rankdir=rankdir)
    if fmt == "dot":
        write_atomic(target, text.encode())
        return Rendered(path, fmt, True)
    exe = shutil.which("dot")
    if exe is None:
        dot_path = path.with_suffix(".dot")
        write_atomic(dot_path, text.encode())
        return Rendered(dot_path, "dot", False)
    try:
        done = safeio.run_child([exe, f"-T{fmt}"], text.encode(), timeout)
    except safeio.ChildTimeout:
        raise RenderError(f"Graphviz `dot` took more than {timeout:g} s to lay out {len(m.graph):,} layers and was "
                          f"stopped; draw less with --collapse or --depth, or allow more with --timeout") from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        why = err[0] if err else (f"killed by signal {-done.returncode} (out of memory?)" if done.returncode < 0
                                  else f"exit status {done.returncode}")
        raise RenderError(f"Graphviz `dot` failed: {why}")
    write_atomic(target, done.stdout)
    return Rendered(path, fmt, True)
