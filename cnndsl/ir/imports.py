"""Imports and block definitions: `import resnet` (a bundled library) or `import "blocks.cnn"` (a file),
read, parsed and their blocks defined, with cycles and diamonds handled."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Any

from .. import ast, safeio, syntax
from ..diagnostics import CompileError, Note, error
from ..layers import LAYERS
from .core import KEYWORDS, BlockDef, Core, Env, FnDef, StmtError, suggest
from .defaults import collect_defaults
from .expr import FAILED, evaluate

LIB_DIR = Path(__file__).resolve().parent.parent / "blocks"
_ROOTS: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("cnndsl_import_roots", default=None)


@contextlib.contextmanager
def import_roots(roots):
    """Within it, `import "file"` reads only files inside these folders or the bundled libraries (the
    playground's sandbox); any other path is refused before it is looked at."""
    token = _ROOTS.set([Path(r).resolve() for r in roots] + [LIB_DIR])
    try:
        yield
    finally:
        _ROOTS.reset(token)


_PARSED: dict[tuple[str, str], ast.Program] = {}


def import_policy() -> tuple[Path, ...] | None:
    """The folders `import_roots` allows here (None: any), for a result that must not outlive a change of it."""
    roots = _ROOTS.get()
    return None if roots is None else tuple(roots)


def import_allowed(path: Path) -> bool:
    """May this file be read? Always, except inside `import_roots`, where only files under its folders may."""
    roots = _ROOTS.get()
    return roots is None or any(path.resolve().is_relative_to(r) for r in roots)


def parse_cached(text: str, name: str) -> ast.Program:
    """syntax.parse, remembered for imported files: an editor re-checks a spec on every keystroke, and its
    imports (ResNet-50's `resnet` library) rarely change. The AST is immutable, so sharing it is safe."""
    key = (name, text)
    prog = _PARSED.get(key)
    if prog is None:
        prog = syntax.parse(text, name)
        if len(_PARSED) >= 64:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = prog
    return prog


def load_definitions(b: Core, prog: ast.Program, defaults, chain: list[str], consts: dict[str, Any]) -> None:
    """Collect the blocks and functions of `prog` and, recursively, of the files it imports; then evaluate
    its top-level `let`s, in order, into `consts` (the file's constants, seen by its blocks and fns)."""
    for s in prog.stmts:
        if isinstance(s, ast.Import):
            consts.update(load_import(b, s, prog.file, chain))  # its constants are known here too
    for s in prog.stmts:
        if isinstance(s, ast.Block):
            define_block(b, s, defaults, consts, prog.file)
        elif isinstance(s, ast.Fn):
            define_fn(b, s, consts)
    env = Env(vars=consts, defaults=defaults, file=prog.file)
    here, b.here = b.here, None  # a top-level `let` is a constant: no value is being built yet
    for s in prog.stmts:
        if isinstance(s, ast.Let):
            bind_let(b, s, env)
    b.here = here


def _reserved(b: Core, name: str, span, what: str) -> bool:
    if name in LAYERS or name in KEYWORDS:
        kind = "layer kind" if name in LAYERS else "keyword"
        b.report(error("reserved-name", f"`{name}` is a built-in {kind}", span, help=f"give the {what} another name"))
        return True
    return False


def bind_let(b: Core, s: ast.Let, env: Env) -> None:
    """`let NAME = value`: evaluated where it stands; a failed one was reported and binds nothing."""
    if _reserved(b, s.name, s.name_span, "constant"):
        return
    if s.name in env.values:
        b.report(error("reserved-name", f"`{s.name}` is a named value and cannot also be a constant", s.name_span,
                       help="pick another name"))
        return
    here = b.here
    try:
        env.vars[s.name] = evaluate(b, s.value, env)
    except StmtError:
        env.vars[s.name] = FAILED
    finally:
        b.here = here


def define_fn(b: Core, fn: ast.Fn, consts) -> None:
    if _reserved(b, fn.name, fn.name_span, "function"):
        return
    first = b.fns[fn.name].node if fn.name in b.fns else b.blocks[fn.name].node if fn.name in b.blocks else None
    if first is fn:
        return
    if first is not None:
        b.report(error("duplicate-block", f"`{fn.name}` is defined twice", fn.name_span,
                       notes=[Note("first defined here", first.name_span)]))
        return
    _unique_params(b, fn.params, "function")
    b.fns[fn.name] = FnDef(fn, consts)


def _unique_params(b: Core, params, what: str) -> None:
    seen = set()
    for p in params:
        if p.name in seen:
            b.report(error("duplicate-param", f"{what} parameter `{p.name}` is listed twice", p.span))
        seen.add(p.name)


def define_block(b: Core, blk: ast.Block, defaults, consts=None, file: str = "") -> None:
    """Make a block callable by its name; built-in names and second definitions are errors."""
    if _reserved(b, blk.name, blk.name_span, "block"):
        return
    if blk.name in b.blocks or blk.name in b.fns:
        first = b.blocks[blk.name].node if blk.name in b.blocks else b.fns[blk.name].node
        if first is blk:
            return
        b.report(error("duplicate-block", f"block `{blk.name}` is defined twice", blk.name_span,
                       notes=[Note("first defined here", first.name_span)]))
        return
    _unique_params(b, blk.params, "block")
    b.blocks[blk.name] = BlockDef(blk, defaults, {} if consts is None else consts, file)


def load_import(b: Core, s: ast.Import, importer: str, chain: list[str]) -> dict[str, Any]:
    """Load an imported file's blocks and functions; return its top-level constants (none when it fails)."""
    if s.is_path:
        base = Path(importer).parent if importer[:1] != "<" else Path.cwd()
        path = (base / s.target)
        if not import_allowed(path):  # the playground's sandbox: refused without naming any folder
            b.report(error("import-refused", f"`{s.target}` is outside the spec's folder, which is all this page "
                           "may read", s.span, help="put the file beside the spec, or check it with `cnndsl check`"))
            return {}
        if not confined(b, path, s):
            return {}
    else:
        path = LIB_DIR / f"{s.target}.cnn"
    key = str(path.resolve()) if path.exists() else str(path)
    if key in chain:
        cycle = " -> ".join(Path(c).name for c in chain[chain.index(key):] + [key])
        b.report(error("import-cycle", f"`{s.target}` imports itself: {cycle}", s.span,
                       help="move the shared blocks into a file that both can import"))
        return {}
    if key in b.sources:
        return b.consts_of.get(key, {})  # already loaded (a diamond of imports)
    if not path.exists():  # something that is not a file (a folder, a FIFO) gets safeio's message below
        lib = sorted(p.stem for p in LIB_DIR.glob("*.cnn"))
        if s.is_path:
            help_ = f"the path is relative to the importing file's folder, {base}"
        else:
            help_ = suggest(s.target, lib) or (f"the bundled libraries are {', '.join(lib)}" if lib else None)
        b.report(error("import-not-found", f"cannot find `{s.target}`", s.span, help=help_))
        return {}
    try:
        text = safeio.read_bytes(path, safeio.MAX_SPEC_BYTES, "spec").decode("utf-8-sig")
    except safeio.FileProblem as e:
        b.report(error("import-not-found", str(e).replace(f"`{path}`", f"`{s.target}`"), s.span))
        return {}
    except UnicodeDecodeError as e:  # never quoted back: it may not be a spec at all
        b.report(error("bad-encoding", f"`{s.target}` is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                                       f"{e.start})", s.span, help="an imported file is a .cnn spec"))
        return {}
    name = str(path) if s.is_path else f"<cnndsl>/blocks/{s.target}.cnn"
    b.sources[key] = text
    b.sources[name] = text
    try:
        prog = parse_cached(text, name)
    except CompileError as e:
        for d in e.diagnostics:
            b.report(d.with_notes(Note("imported here", s.span)))
        return {}
    for st in prog.stmts:
        if not isinstance(st, (ast.Import, ast.Block, ast.Defaults, ast.Fn, ast.Let)):
            b.report(error("bad-import", "an imported file may hold only `block`, `fn`, `let`, `defaults` and "
                           "`import`",
                           st.span, notes=[Note("imported here", s.span)]))
    defaults = collect_defaults(b, prog.stmts, Env())
    b.consts_of[key] = {}
    load_definitions(b, ast.Program(prog.stmts, key), defaults, chain + [key], b.consts_of[key])
    return b.consts_of[key]


def confined(b: Core, path: Path, s: ast.Import) -> bool:
    """An imported path must be a .cnn file inside the main spec's folder tree, the bundled libraries or a
    folder allowed with --allow-import; otherwise report why and return False (nothing is read)."""
    if path.suffix != ".cnn":
        b.report(error("import-not-a-spec", f"`{s.target}` is not a .cnn file", s.span,
                       help='only specs can be imported: `import "blocks.cnn"`'))
        return False
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        real = path
    root = (b.root or Path.cwd()).resolve()
    if any(real.is_relative_to(d) for d in (root, LIB_DIR, *b.allow_import)):
        return True
    b.report(error("import-outside", f"`{s.target}` is outside the folder of the spec, `{root}`", s.span,
                   help="imports stay inside the spec's folder and its subfolders (symbolic links are followed "
                        "first); allow another folder with `--allow-import DIR`"))
    return False
