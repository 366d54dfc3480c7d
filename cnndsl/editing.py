"""What an editor needs to know about a spec while it is written: the language server (cnndsl.lsp) and the
playground (cnndsl.serve) are thin shells over this module.

`analyze(text, path)` runs the one pipeline (cnndsl.model.compile_text) and indexes the result: the
diagnostics as `check` reports them, each line's output shape, the blocks, named values and imports with
where they are defined, and what is under a position (hover), where it goes (definition) and what may
be typed there (completion). Positions here are the pipeline's: 1-based lines and columns in code points.
Nothing here prints, and nothing imports onnx, onnxruntime or an LSP library.
"""

from __future__ import annotations

import gc
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from . import ast, safeio
from .diagnostics import CompileError, Diagnostic, Span, error
from .incremental import Reparser
from .ir import LIB_DIR
from .ir.imports import import_allowed, import_policy, parse_cached
from .layers import INTERNAL, LAYERS, REQUIRED
from .model import Model, compile_text
from .relocate import Unmoved, line_map, moved, moved_diagnostics
from .util import fmt_shape, gc_paused, human
from .util import show as _show

MAX_TEXT = 2_000_000  # characters an editor may send for one spec (a 10,000-layer spec is about 200,000)
LAYER_LIMIT = 50_000  # layers one analysis may expand to, well under the CLI's 250,000: it runs per keystroke
KEYWORDS = ("network", "input", "defaults", "import", "output", "block", "residual", "shortcut", "repeat")


@dataclass(frozen=True)
class Symbol:
    """A block, named value or block parameter: where it is defined (its name's span) and what it is."""

    name: str
    kind: str  # "block" | "value" | "param" | "network"
    span: Span
    detail: str = ""


class Analysis:
    """One version of one document, checked; indexed (symbols, blocks, imports, each line's shape) only
    when an editor first asks (hover, definition, completion, inlay hints), not on every change."""

    def __init__(self, path: str, text: str, diagnostics: list[Diagnostic], sources: dict[str, str],
                 model: Model | None = None, program: ast.Program | None = None,
                 reparser: Reparser | None = None):
        self.path, self.text, self.diagnostics, self.sources = path, text, diagnostics, sources
        self.model = model
        self._program = program
        self._reparser = reparser
        self._ix: dict | None = None
        self.parsed = program is not None  # whether the text parsed (else `program` is the lines above the error)
        self.max_layers = LAYER_LIMIT
        self.moved = False  # the last check moved to new lines (cnndsl.relocate)
        self._parse_later = False  # then the text is parsed when the AST is first asked for
        self.sandbox = import_policy()  # the folders imports could read from (the playground's sandbox)

    @property
    def program(self) -> ast.Program | None:
        """The document's AST; while a line is being typed and the spec does not parse, the AST of the
        lines above the error, whose blocks and values completion and go-to-definition still offer."""
        if self._program is None and self._parse_later:
            self._parse_later = False
            try:
                # kept as the document's latest version (it is, or was a moment ago): what a lasting run of
                # moved checks parses stays within the Reparser's two versions
                self._program = (self._reparser or REPARSER).parse(self.text, self.path)
            except (CompileError, RecursionError):
                self._program = None
        if self._program is None and self.diagnostics and self.diagnostics[0].code != "too-large":
            self._program = _program_above(self)
        return self._program

    def _index(self) -> dict:
        if self._ix is None:
            self._ix = {"symbols": [], "blocks": {}, "imports": [], "line_shapes": {}, "annotated_lines": set()}
            if self.program is not None:
                try:
                    _index(self, self._ix)
                except RecursionError:  # nested deeper than Python recurses: `check`'s too-deep error says so
                    self._ix.update(symbols=[], blocks={}, line_shapes={})
        return self._ix

    @property
    def symbols(self) -> list[Symbol]:
        return self._index()["symbols"]

    @property
    def blocks(self) -> dict[str, tuple[ast.Block, str]]:
        """name -> (definition, real file)."""
        return self._index()["blocks"]

    @property
    def imports(self) -> list[tuple[ast.Import, str | None]]:
        """(statement, real file)."""
        return self._index()["imports"]

    @property
    def line_shapes(self) -> dict[int, tuple[str, str]]:
        """line -> (node id, shape)."""
        return self._index()["line_shapes"]

    @property
    def annotated_lines(self) -> set[int]:
        return self._index()["annotated_lines"]


def _real_file(span_file: str) -> str:
    """The file on disk behind a span's file name (bundled libraries are named `<cnndsl>/blocks/x.cnn`)."""
    if span_file.startswith("<cnndsl>/blocks/"):
        return str(LIB_DIR / Path(span_file).name)
    return span_file


def _walk(stmts, out: list) -> None:
    """Every chain element (layers and calls included) in source order, outer before inner, bodies and
    branches included; iterative, so a spec nested thousands deep is walked like any other."""
    todo = [("stmts", stmts)]
    while todo:
        what, x = todo.pop()
        if what == "stmts":
            for s in reversed(x):
                if isinstance(s, ast.Block):
                    todo.append(("stmts", s.body))
                elif isinstance(s, (ast.Assign, ast.ChainStmt)):
                    todo.extend(("el", el) for el in reversed(s.chain.elements))
            continue
        out.append(x)
        if isinstance(x, ast.Annotated):
            todo.append(("el", x.element))
        elif isinstance(x, ast.Branches):
            todo.extend(("stmts", b) for b in reversed(x.branches))
        elif isinstance(x, (ast.Residual, ast.Shortcut, ast.Repeat)):
            todo.append(("stmts", x.body))


def _load_blocks(prog: ast.Program, real: str, blocks: dict, imports: list | None, seen: set) -> None:
    """Block definitions of a program and of what it imports (through the one parser), for definitions."""
    for s in prog.stmts:
        if isinstance(s, ast.Block):
            blocks.setdefault(s.name, (s, _real_file(real)))
    for s in prog.stmts:
        if not isinstance(s, ast.Import):
            continue
        if s.is_path:
            base = Path(real).parent if real[:1] != "<" else Path.cwd()
            path = base / s.target
            name = str(path)
        else:
            path = LIB_DIR / f"{s.target}.cnn"
            name = f"<cnndsl>/blocks/{s.target}.cnn"
        target = str(path) if import_allowed(path) and path.is_file() else None
        if imports is not None:
            imports.append((s, target))
        if target is None or target in seen:
            continue
        seen.add(target)
        sub = _parsed(path, name)
        if sub is None:
            continue
        _load_blocks(sub, name, blocks, None, seen)


def _parsed(path: Path, name: str) -> ast.Program | None:
    try:
        return parse_cached(path.read_text(encoding="utf-8"), name)
    except (CompileError, OSError, UnicodeDecodeError):
        return None


REPARSER = Reparser()  # what analyze() reuses between versions of a document unless given its own


class Collector:
    """The cyclic garbage collector of a long-running editor process (`cnndsl lsp`, `cnndsl serve`).

    A check leaves hundreds of thousands of objects alive for a large spec (its AST, graph and diagnostics),
    which the collector would scan again at every collection of the generation they sit in: 0.3 s for a
    10,000-layer spec, and 2 s when several versions' objects pass through its middle generation at once,
    seconds of lag in the middle of typing. A check makes no reference cycles (tests/test_incremental.py
    checks it), so after each one what is alive is frozen out of the collections (`gc.freeze`), to be freed
    by reference counting as the next versions replace it; once the editor has been idle for `IDLE`
    seconds, one full collection reclaims the cycles that anything else made (the server's libraries)."""

    IDLE = 2.0

    def __init__(self) -> None:
        self.enabled = False  # set by the long-running commands; a library user's process is left alone
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.idle_collections = 0

    def checked(self) -> None:
        """After a check: freeze what it left, and collect once the editor is idle."""
        if not self.enabled:
            return
        gc.freeze()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.IDLE, self._idle)
            self._timer.daemon = True
            self._timer.start()

    def _idle(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.idle_collections += 1


COLLECTOR = Collector()


@gc_paused()
def analyze(text: str, path: str = "<spec>", max_layers: int = LAYER_LIMIT,
            reparser: Reparser | None = None, costs: bool = False) -> Analysis:
    """Check a document as `cnndsl check` does; hover, hints, definitions and completion index it later.

    Successive versions of one document are parsed incrementally (cnndsl.incremental): only the
    statements an edit changed are parsed again, through `reparser` (by default one kept here). The costs
    (the model's table, totals and the nodes' parameters and MACs) are made when first asked for, by
    hover or `a.model.costed()`, unless `costs`: a keystroke pays for the diagnostics and the shapes (what
    inlay hints show) only."""
    if len(text) > MAX_TEXT:
        d = error("too-large", f"the spec is {len(text):,} characters, more than the editor limit of {MAX_TEXT:,}",
                  Span(path, 1, 1, 1, 2), help="check it from the command line: `cnndsl check FILE`")
        return Analysis(path, text, [d], {path: text})
    rp = REPARSER if reparser is None else reparser
    a = _moved(rp.results.get(path), path, text, max_layers, rp)
    if a is None:
        a = Analysis(path, text, [], {path: text}, reparser=rp)
        a.max_layers = max_layers
        try:
            try:
                a._program = rp.parse(text, path)
                a.parsed = True
            except RecursionError:
                a._program = None  # compile_text parses it again and reports it nested too deeply
            a.model = compile_text(text, path, max_layers=max_layers, program=a._program, costs=costs)
            a.diagnostics = list(a.model.warnings)
            a.sources = a.model.sources
        except CompileError as e:
            a.diagnostics, a.sources = list(e.diagnostics), e.sources
    elif costs and a.model is not None:
        a.model.costed()
    rp.results[path] = a
    return a


def _moved(last, path: str, text: str, max_layers: int, rp: Reparser) -> Analysis | None:
    """The last check of the document moved to the lines of `text`, when `text` only adds, removes or
    changes blank and comment-only lines (cnndsl.relocate) and the files it imports are as they were; None
    to check `text` as usual."""
    if (not isinstance(last, Analysis) or not last.parsed or last.max_layers != max_layers
            or last.sandbox != import_policy()
            or any(d.code.startswith("import") or d.code == "bad-encoding" for d in last.diagnostics)):
        return None  # what the file system held or allowed may have changed what the check found
    lines = line_map(last.text, text)
    if lines is None or not _imports_unchanged(last, path):
        return None
    try:
        if last.model is not None:
            model = moved(last.model, path, text, lines)
            diagnostics, sources = list(model.warnings), model.sources
        else:
            model, diagnostics = None, moved_diagnostics(last.diagnostics, path, lines)
            sources = {**last.sources, path: text}
    except Unmoved:
        return None
    a = Analysis(path, text, diagnostics, sources, model=model, reparser=rp)
    a.parsed, a.max_layers, a.moved, a._parse_later = True, max_layers, True, True
    return a


def _imports_unchanged(a: Analysis, path: str) -> bool:
    """Whether every other file the check read (imports, bundled libraries) still holds what it read."""
    read = set()
    for name, was in a.sources.items():
        if name == path:
            continue
        real = Path(_real_file(name))
        try:
            where = real.resolve()
            if where in read:  # a file is filed under its resolved path and under its name: read it once
                continue
            read.add(where)
            if not import_allowed(real) or safeio.read_bytes(real, safeio.MAX_SPEC_BYTES, "spec").decode(
                    "utf-8-sig") != was:
                return False
        except (safeio.FileProblem, UnicodeDecodeError, OSError, RuntimeError):  # RuntimeError: a link loop
            return False  # checked as usual, which says what is wrong with the file
    return True


def _program_above(a: Analysis) -> ast.Program | None:
    """The AST of the lines above a syntax error (None if they do not parse either)."""
    span = a.diagnostics[0].span
    line = span.line if span and span.file == a.path else 1
    try:
        return (a._reparser or REPARSER).parse("\n".join(a.text.split("\n")[: line - 1]), a.path, keep=False)
    except (CompileError, RecursionError):
        return None


def _index(a: Analysis, ix: dict) -> None:
    path = a.path
    _load_blocks(a.program, path, ix["blocks"], ix["imports"], {path})
    symbols = ix["symbols"]
    for s in a.program.stmts:
        if isinstance(s, ast.Block):
            params = ", ".join(p.name + (f"={_src(p.default)}" if p.default else "") for p in s.params)
            symbols.append(Symbol(s.name, "block", s.name_span, f"block {s.name}({params})"))
            for p in s.params:
                symbols.append(Symbol(p.name, "param", p.span, f"parameter of `{s.name}`"))
            for b in s.body:
                if isinstance(b, ast.Assign):
                    symbols.append(Symbol(b.name, "value", b.name_span, f"named value in `{s.name}`"))
        elif isinstance(s, ast.Assign):
            symbols.append(Symbol(s.name, "value", s.name_span, "named value"))
        elif isinstance(s, ast.Network):
            symbols.append(Symbol(s.name, "network", s.span, "network"))
    els: list = []
    _walk(a.program.stmts, els)
    ix["annotated_lines"] = {el.span.end_line for el in els if isinstance(el, ast.Annotated)}
    if a.model is not None:
        g = a.model.layer_graph
        for n, d in g.nodes(data=True):
            if d["op"] == "input":
                continue
            calls = d["calls"]
            span = calls[0][1] if calls else d["span"]
            if span.file == path:
                ix["line_shapes"][span.end_line] = (n, fmt_shape(d["shape"]))


def _src(e) -> str:
    if isinstance(e, ast.Num):
        return _show(e.value)
    if isinstance(e, ast.Size):
        return fmt_shape(e.dims)
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Str):
        return f'"{e.value}"'
    if isinstance(e, ast.BinOp):
        return f"{_src(e.left)}{e.op}{_src(e.right)}"
    if isinstance(e, ast.Neg):
        return f"-{_src(e.operand)}"
    if isinstance(e, ast.ListLit):
        return "[" + ", ".join(_src(i) for i in e.items) + "]"
    return "?"


def _inside(span: Span, line: int, col: int) -> bool:
    if span.file and (line, col) < (span.line, span.col):
        return False
    return (line, col) < (span.end_line, span.end_col) or (line, col) == (span.end_line, span.end_col)


# --- what is under the cursor ---------------------------------------------------------------------


def _word_at(text: str, line: int, col: int) -> tuple[str, int, int] | None:
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    s = lines[line - 1]
    i = col - 1
    for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", s):
        if m.start() <= i <= m.end():
            return m.group(), m.start() + 1, m.end() + 1
    return None


def kind_help(name: str) -> str:
    """A layer kind in the words of `cnndsl layers KIND`."""
    k = LAYERS[name]
    pos = f" [{' '.join(k.positional)}]" if k.positional else ""
    out = [f"**{k.name}**{pos}: {k.doc}", ""]
    required = [n for n, p in k.params.items() if p.default is REQUIRED]
    for pname in required + [n for n in k.params if n not in required]:
        out.append(f"- `{pname}` {k.params[pname].doc}{param_default(k.params[pname])}")
    return "\n".join(out)


def param_default(p) -> str:
    if p.default is REQUIRED:
        return " (required)"
    if p.default is None:
        return "" if "default" in p.doc else " (optional)"
    return f" (default {_show(p.default)})"


def _node_facts(m: Model, n: str) -> str:
    g = m.layer_graph
    d = g.nodes[n]
    ins = [fmt_shape(g.nodes[u]["shape"]) for u in _inputs(g, n)]
    return (f"`{n}`: {LAYERS[d['op']].label(d['attrs'])}  \n"
            f"{' + '.join(ins) or 'input'} → **{fmt_shape(d['shape'])}**  \n"
            f"{d['params']:,} parameters ({d['trainable']:,} trainable), {d['macs']:,} MACs ({human(d['macs'])})"
            + _rf_text(m, n))


def _rf_text(m: Model, n: str) -> str:
    """The receptive field of a layer's output (cnndsl.analyses.receptive), in `explain`'s words: its size,
    its effective stride (the jump between neighbouring outputs' fields) and, when the field reaches into
    the padding, the input pixel where it starts."""
    d = m.layer_graph.nodes[n]
    f = d.get("rf")
    if f is None:
        why = m.rf.declined.get(n) if m.rf is not None else None
        return f"  \nno receptive field: {why}" if why else ""
    if len(d["shape"]) != 3:
        return f"  \nreceptive field **{fmt_shape(f.size)}** (the whole field this vector depends on)"
    stride, start = (str(v[0]) if v[0] == v[1] else f"({v[0]}, {v[1]})" for v in (f.stride, f.start))
    where = f", starting at input pixel {start}" if any(f.start) else ""
    return f"  \nreceptive field **{fmt_shape(f.size)}**, effective stride (jump) {stride}{where}"


def _inputs(g, n):
    from .graph import inputs_of

    return inputs_of(g, n)


def hover(a: Analysis, line: int, col: int) -> tuple[str, Span] | None:
    """Markdown for what is at (line, col), and the span it covers."""
    if a.program is None:
        return None
    if a.model is not None:
        a.model.costed()
    els: list = []
    _walk(a.program.stmts, els)
    layers = [el for el in els if isinstance(el, ast.Layer) and _inside(el.name_span, line, col)]
    w = _word_at(a.text, line, col)
    if layers:
        el = layers[-1]
        if el.name in a.blocks:
            return _hover_block(a, el), el.name_span
        if el.name in LAYERS and el.name not in INTERNAL:
            facts = _layer_nodes(a, el)
            text = "\n\n".join(_node_facts(a.model, n) for n in facts[:4])
            if len(facts) > 4:
                text += f"\n\n… and {len(facts) - 4} more expansions"
            return (text + "\n\n---\n" if text else "") + kind_help(el.name), el.name_span
        value = _value(a, el.name, line)
        if value:
            return _hover_value(a, value), el.name_span
    if w:
        word, c0, c1 = w
        span = Span(a.path, line, c0, line, c1)
        value = _value(a, word, line)
        if value:
            return _hover_value(a, value), span
        if word in a.blocks:
            return _block_signature(a.blocks[word][0]), span
        for s in a.symbols:
            if s.kind == "param" and s.name == word:
                return f"`{word}`: {s.detail}", span
    return None


def _layer_nodes(a: Analysis, el: ast.Layer) -> list[str]:
    if a.model is None:
        return []
    return [n for n, d in a.model.layer_graph.nodes(data=True) if d["span"] == el.span]


def _block_signature(b: ast.Block) -> str:
    params = ", ".join(p.name + (f"={_src(p.default)}" if p.default else "") for p in b.params)
    return f"```cnn\nblock {b.name}({params})\n```"


def _hover_block(a: Analysis, el: ast.Layer) -> str:
    b, where = a.blocks[el.name]
    text = _block_signature(b) + f"\n\ndefined at {Path(where).name}:{b.name_span.line}"
    if a.model is not None:
        g = a.model.layer_graph
        nodes = [n for n, d in g.nodes(data=True) if d["calls"] and d["calls"][0][1] == el.span]
        if nodes:
            params = sum(g.nodes[n]["params"] for n in nodes)
            macs = sum(g.nodes[n]["macs"] for n in nodes)
            first = _inputs(g, nodes[0])
            src = fmt_shape(g.nodes[first[0]]["shape"]) if first else "?"
            text += (f"\n\nthis call: {src} → **{fmt_shape(g.nodes[nodes[-1]]['shape'])}**, {len(nodes)} layers, "
                     f"{params:,} parameters, {macs:,} MACs ({human(macs)})" + _rf_text(a.model, nodes[-1]))
    return text


def _value(a: Analysis, name: str, line: int) -> Symbol | None:
    """The definition of a named value in effect at `line` (the last one before it, else the first)."""
    defs = [s for s in a.symbols if s.kind == "value" and s.name == name]
    before = [s for s in defs if s.span.line <= line]
    return before[-1] if before else (defs[0] if defs else None)


def _hover_value(a: Analysis, s: Symbol) -> str:
    text = f"value `{s.name}`, defined at line {s.span.line}"
    if a.model is not None and s.name in a.model.layer_graph:
        text += f": **{fmt_shape(a.model.layer_graph.nodes[s.name]['shape'])}**"
    return text


def definition(a: Analysis, line: int, col: int) -> tuple[str, Span] | None:
    """(real file, span) of the definition of the block, value, parameter or import at (line, col)."""
    if a.program is None:
        return None
    for s, target in a.imports:
        if target and s.span.file == a.path and _inside(s.span, line, col):
            return target, Span(target, 1, 1, 1, 1)
    w = _word_at(a.text, line, col)
    if not w:
        return None
    word = w[0]
    if word in a.blocks:
        b, where = a.blocks[word]
        return where, b.name_span
    value = _value(a, word, line)
    if value:
        return a.path, value.span
    for s in a.symbols:
        if s.kind == "param" and s.name == word:
            return a.path, s.span
    return None


# --- completion -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # "layer" | "block" | "value" | "keyword" | "param"
    detail: str = ""
    insert: str | None = None


def complete(a: Analysis, line: int, col: int) -> list[Completion]:
    """What may be typed at (line, col): a parameter of the layer or block being written, or what starts
    an element (layer kinds, blocks, named values, keywords)."""
    lines = a.text.split("\n")
    prefix = lines[line - 1][: col - 1] if 1 <= line <= len(lines) else ""
    prefix = prefix.split("#", 1)[0]
    element = re.split(r"->|\||\{|\(|,|=\s*(?=[A-Za-z_]*$)", prefix)[-1] if prefix else ""
    head = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s+", element)
    call = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\(([^()]*)$", prefix)
    if call and call.group(1) in a.blocks:
        b = a.blocks[call.group(1)][0]
        return [Completion(f"{p.name}=", "param", f"parameter of `{b.name}`" +
                           (f" (default {_src(p.default)})" if p.default else " (required)")) for p in b.params]
    if head and not re.search(r"=\s*$", element):
        name = head.group(1)
        if name in LAYERS and name not in INTERNAL:
            given = set(re.findall(r"([A-Za-z_]+)=", element))
            return [Completion(f"{p}=", "param", f"{LAYERS[name].params[p].doc}{param_default(LAYERS[name].params[p])}")
                    for p in LAYERS[name].params if p not in given]
        if name in a.blocks:
            b = a.blocks[name][0]
            return [Completion(f"{p.name}=", "param", f"parameter of `{b.name}`") for p in b.params]
    out = [Completion(k, "layer", LAYERS[k].doc) for k in LAYERS if k not in INTERNAL]
    for name, (b, _) in sorted(a.blocks.items()):
        params = ", ".join(p.name for p in b.params)
        out.append(Completion(name, "block", f"block {name}({params})", f"{name}()" if not b.params else None))
    seen = set()
    for s in a.symbols:
        if s.kind == "value" and s.name not in seen:
            seen.add(s.name)
            out.append(Completion(s.name, "value", f"named value (line {s.span.line})"))
    if not prefix.strip():
        out += [Completion(k, "keyword") for k in KEYWORDS]
    return out
