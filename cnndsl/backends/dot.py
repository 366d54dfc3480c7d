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

from ..graph import LayerGraph
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
    "fc": "#d9d2e9", "regularization": "#e2efda", "shape": "#eeeeee", "merge": "#ffffff", "block": "#e4e9f2",
}
FALLBACK = ("#d0e0e3", "#ead1dc", "#fce5cd", "#e6f2d9", "#e1d5e7", "#dae8fc", "#f8cecc", "#fff2cc")
GROUP_NAMES = {"io": "input", "act": "activation"}  # legend wording where the group name is terse
SKIP_COLOR = "#b45f06"
TITLE = "/title"  # a frame's title is a text node with the frame's id and this suffix
OUT = "/out"  # the invisible end of a last merge's output edge, which carries its shape
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
    g: LayerGraph
    scopes: dict
    fold: Fold
    order: dict[str, int]


def _view(g: LayerGraph, collapse: bool, depth: int | None) -> _View:
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


def _rf_text(d: dict) -> str:
    f = d.get("rf")
    return "" if f is None else f"RF {fmt_shape(f.size)}, stride {fmt_shape(f.stride)}, pad {fmt_shape(f.padding)}"


def _layer_node(n: str, d: dict, is_output: bool, last: bool = False, rf: bool = False) -> str:
    kind = LAYERS[d["op"]]
    label = kind.label(d["attrs"])
    tip = f"{n}: {label} -> {fmt_shape(d['shape'])}, {d['params']:,} params, {d['macs']:,} MACs" + (
        f"; {_rf_text(d)}" if d.get("rf") is not None else "")
    ring = 2 if is_output else None  # the network's outputs get a double border
    if kind.symbol:  # a merge's output shape is on its out-edges; a last one gets a short edge of its own
        circle = _stmt(n, label=kind.symbol, shape="circle", fixedsize="true", width=0.36, fontsize=15,
                       style="filled", fillcolor="#ffffff", penwidth=1.2, tooltip=tip, peripheries=ring)
        if not last:
            return circle
        stub, shape = n + OUT, fmt_shape(d["shape"])
        return (f"{circle} {_stmt(stub, shape='point', style='invis', width=0.01)} "
                f"{_q(n)} -> {_q(stub)} [{_attrs(label=shape, tooltip=f'{n}: {shape}')}];")
    return _stmt(n, label=_table(label, _facts(d["shape"], d["params"]), _rf_text(d) if rf else ""),
                 fillcolor=group_color(kind.group),
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
    its projection shortcut; or a named value merged later on (U-Net's and DenseNet's concatenations)."""
    if v.g.nodes[w]["role"] == "residual" and slot == 1:
        return True
    return _in_shortcut(v, w) or _is_long_skip(v, u, w)


def _is_long_skip(v: _View, u: str, w: str) -> bool:
    """`concat(skip, x)`: an input of a merge that is not one of parallel branches and that was made
    before the merge's latest input, so it jumps over the layers between."""
    g = v.g
    if not LAYERS[g.nodes[w]["op"]].symbol or v.scopes.get(w, {}).get("kind") in ("branches", "residual"):
        return False
    latest = max(v.order[p] for p in g.predecessors(w))
    return v.order[u] < latest and v.fold.rep[u] != v.fold.rep[next(p for p in g.predecessors(w)
                                                                    if v.order[p] == latest)]


def _u_shape(v: _View, skips: list[tuple[str, str]], shapes: dict[str, tuple]) -> tuple[int, list] | None:
    """An encoder-decoder (U-Net): two or more skips that nest (u1 < u2 < w2 < w1, in source order) and
    join tensors of the same H x W. Returns (the bottom of the U, the nested pairs), or None."""
    pairs = sorted(((u, w) for u, w in skips if len(shapes[u]) == 3 and shapes[u][:2] == shapes[w][:2]),
                   key=lambda e: v.order[e[0]])
    nested = []
    for u, w in pairs:
        if not nested or v.order[w] < v.order[nested[-1][1]]:
            nested.append((u, w))
    if len(nested) < 2:
        return None
    lo, hi = v.order[nested[-1][0]], v.order[nested[-1][1]]
    between = [n for n in v.g if lo < v.order[n] < hi and len(shapes.get(n, ())) == 3]
    if not between:
        return None
    bottom = min(between, key=lambda n: (shapes[n][0] * shapes[n][1], -v.order[n]))
    return bottom, nested


def _legend(m: Model, groups: list[str], merges: list[str], skips: bool, folded: bool) -> str:
    t = m.totals
    extra = f" (+{t.non_trainable_params:,} non-trainable)" if t.non_trainable_params else ""
    head = (f"<B>{_e(m.name)}</B>   input {fmt_shape(m.input_shape)}   ·   {t.trainable_params:,} trainable "
            f"parameters{extra}   ·   {t.macs:,} MACs")
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
           legend: bool = True, dpi: int | None = None, rf: bool = False) -> str:
    """The diagram as DOT text: the same model and options always give the same bytes.

    Args:
        collapse: fold each innermost block call (and each residual or branches outside any block) into
            one node with its totals: ResNet's bottlenecks, GoogLeNet's Inception modules.
        depth: fold the scopes nested deeper than `depth` (0 folds the top-level ones; None folds none).
        dpi: the resolution of a bitmap drawn from the text (None: Graphviz's default).
        rf: add each layer's receptive field, effective stride and padding to its box.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    g = m.layer_graph
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
                   labelloc="b", labeljust="l", tooltip=m.name, dpi=dpi, forcelabels="true")
    node = _attrs(shape="box", style="rounded,filled", fontname=FONT, fontsize=11, color="#444444", penwidth=0.8,
                  margin="0.12,0.05")
    edge = _attrs(fontname=FONT, fontsize=8, fontcolor="#666666", color="#555555", arrowsize=0.6, penwidth=0.9)
    lines = [f"digraph {_q(m.name)} {{", f"  graph [{graph}];", f"  node [{node}];", f"  edge [{edge}];"]

    def first(scope: str) -> str:
        _, what, ident = min(items[scope])
        return first(ident) if what == "cluster" else ident

    def emit(scope: str, indent: str) -> None:
        for _, what, ident in sorted(items.get(scope, [])):
            if what == "cluster":
                sc = v.scopes[ident]
                color, fill, style = SCOPE_STYLE.get(sc["kind"], ("#9a9a9a", None, "solid"))
                styles = ["rounded"] + (["filled"] if fill else []) + ([style] if style != "solid" else [])
                lines.append(f"{indent}subgraph {_q('cluster_' + ident)} {{")
                frame = _attrs(label="", style=",".join(styles), color=color, fillcolor=fill,
                               labeljust="l", labelloc="t", penwidth=1.1, tooltip=ident)
                lines.append(f"{indent}  graph [{frame}];")
                # NOTE: the title is a text node beside the frame's first node, not the frame's label:
                # Graphviz routes edges around nodes but straight through cluster labels.
                title = ident + TITLE
                lines.append(indent + "  " + _stmt(title, label=scope_title(v.scopes, ident), shape="plaintext",
                                                   style="", fontcolor=color, fontsize=10, tooltip=ident))
                emit(ident, indent + "  ")
                lines.append(f"{indent}  {{rank=same; {_q(title)} {_q(first(ident))}}}")
                lines.append(f"{indent}}}")
            elif ident in v.fold.folded:
                lines.append(indent + _folded_node(v, ident))
            else:
                lines.append(indent + _layer_node(ident, g.nodes[ident], ident in outs, not g.out_degree(ident), rf))

    emit("", "  ")

    # The drawn edges, one per pair of drawn nodes: (u, w) -> (sort key, the layer edge it stands for, skip)
    drawn: dict[tuple[str, str], tuple[tuple[int, int, int], str, str, bool]] = {}
    for u, w, slot in g.edges(data="slot"):
        ru, rw = v.fold.rep[u], v.fold.rep[w]
        if ru == rw:
            continue
        key = (v.order[w], slot or 0, v.order[u])
        if (ru, rw) in drawn and drawn[(ru, rw)][0] <= key:
            continue
        skip = not v.fold.is_folded(w) and _is_skip(v, u, w, slot or 0)
        drawn[(ru, rw)] = (key, u, w, skip)

    # An encoder-decoder is drawn as a U: the decoder climbs back up beside the encoder (its edges are
    # laid out reversed, drawn forward with dir=back) and each skip joins two tensors on the same rank.
    rep_order: dict[str, int] = {}
    for n in g:
        rep_order.setdefault(v.fold.rep[n], v.order[n])
    u_shape = _u_shape(v, [(u, w) for (_, u, w, skip) in drawn.values() if skip], {n: g.nodes[n]["shape"] for n in g})
    bottom = rep_order[v.fold.rep[u_shape[0]]] if u_shape else None
    same_rank = [(v.fold.rep[u], v.fold.rep[w]) for u, w in u_shape[1]] if u_shape else []

    edges = {}
    for (ru, rw), (key, u, w, skip) in drawn.items():
        shape = fmt_shape(g.nodes[u]["shape"])
        identity = skip and g.nodes[w]["role"] == "residual"  # the block's input: labelled where it enters
        up = bottom is not None and rep_order[rw] > bottom and rep_order[ru] >= bottom
        across = bottom is not None and (ru, rw) in same_rank
        style = _attrs(label=None if identity else shape, tooltip=f"{u} -> {w}: {shape}",
                       style="dashed" if skip else None, color=SKIP_COLOR if skip else None,
                       fontcolor=SKIP_COLOR if skip else None, penwidth=1.4 if skip else None,
                       dir="back" if up else None, constraint="false" if across else None)
        a, b = (rw, ru) if up else (ru, rw)
        edges[(ru, rw)] = (key, f"  {_q(a)} -> {_q(b)} [{style}];")
    lines += [line for _, line in sorted(edges.values())]
    for a, b in same_rank:
        lines.append(f"  {{rank=same; {_q(a)} {_q(b)}}}")

    # Inception-style branches side by side: their first layers share a rank (newrank lets a rank
    # constraint span clusters); otherwise dot moves a short branch to whichever rank is emptier.
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
    folded: bool = False  # True: too large for a bitmap as asked, so drawn with every innermost block folded


def write_atomic(path, data: bytes) -> None:
    """Write through a temporary file in the same folder and a rename (or into a device), see cnndsl.safeio."""
    from .. import safeio

    safeio.write_bytes(path, data)


class RenderError(RuntimeError):
    """Graphviz's `dot` ran but failed."""


class TooLarge(RuntimeError):
    """The bitmap would pass Graphviz's 32,767 px limit even folded: use SVG or PDF, or fold more."""


PNG_DPI = 200  # as Keras's plot_model; Graphviz's own default (96) gives a 12 px shape line
BITMAP_LIMIT = 32_767  # px on a side: cairo's limit, past which Graphviz shrinks the picture with a warning


def _graphviz(text: str, fmt: str, timeout: float = 60, layers: int = 0) -> tuple[bytes, str] | None:
    """Run `dot -T<fmt>`; (image, its warnings) or None when `dot` is not installed. Raises RenderError
    when it fails or runs past `timeout` seconds (it is killed; it also dies with cnndsl)."""
    import shutil

    from .. import safeio

    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        done = safeio.run_child([exe, f"-T{fmt}"], text.encode(), timeout)
    except safeio.ChildTimeout:
        raise RenderError(f"Graphviz `dot` took more than {timeout:g} s to lay out {layers:,} layers and was "
                          f"stopped; draw less with --collapse or --depth, or allow more with --timeout") from None
    err = done.stderr.decode(errors="replace").strip()
    if done.returncode != 0:
        lines = err.splitlines()
        why = lines[0] if lines else (f"killed by signal {-done.returncode} (out of memory?)" if done.returncode < 0
                                      else f"exit status {done.returncode}")
        raise RenderError(f"Graphviz `dot` failed: {why}")
    return done.stdout, err


def render_file(m: Model, path, collapse: bool = False, depth: int | None = None,
                rankdir: str = "TB", timeout: float = 60, dpi: int | None = None, rf: bool = False) -> Rendered:
    """Draw `m` to `path` (a path or a checked cnndsl.safeio.Target); the suffix picks the format (.svg, .png,
    .pdf or .dot).

    A PNG is drawn at `dpi` (default PNG_DPI). One that Graphviz would have to shrink to fit its bitmap
    limit is drawn folded (`collapse`) instead, which the result reports (`folded=True`); if even that
    is too large, TooLarge is raised. Graphviz's own warnings never reach the terminal.

    Without Graphviz's `dot` program the DOT text is written beside `path` (same name, `.dot`) and the
    result says `image=False`. Raises FormatError for an unknown suffix, OSError for an unwritable path,
    RenderError when `dot` fails or runs past `timeout` seconds.
    """
    from .. import safeio

    target = safeio.as_target(path)
    path = target.path
    fmt = output_format(path) if not target.stream or path.suffix else "svg"
    if fmt != "png":
        dpi = None  # vector formats have no resolution
    dpi = dpi or (PNG_DPI if fmt == "png" else None)
    text = to_dot(m, collapse=collapse, depth=depth, rankdir=rankdir, dpi=dpi, rf=rf)
    if fmt == "dot":
        write_atomic(target, text.encode())
        return Rendered(path, fmt, True)
    done = _graphviz(text, fmt, timeout, len(m.layer_graph))
    if done is None:
        dot_path = path.with_suffix(".dot")
        write_atomic(dot_path, text.encode())
        return Rendered(dot_path, "dot", False)
    data, warnings = done
    folded = False
    if "too large" in warnings:
        if collapse or depth == 0:
            raise TooLarge(f"the diagram is larger than {BITMAP_LIMIT:,} px on a side at {dpi} dpi")
        text = to_dot(m, collapse=True, depth=depth, rankdir=rankdir, dpi=dpi, rf=rf)
        data, warnings = _graphviz(text, fmt, timeout, len(m.layer_graph)) or (b"", "")
        if "too large" in warnings:
            raise TooLarge(f"the diagram is larger than {BITMAP_LIMIT:,} px on a side at {dpi} dpi, even folded")
        folded = True
    write_atomic(target, data)
    return Rendered(path, fmt, True, folded)
