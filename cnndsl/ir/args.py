"""A layer's arguments: positional and named values checked against its kind's declared parameters.

Everything this knows about a kind comes from the registry entry (its `params`, `positional` and
`window`); it names no parameter itself.
"""

from __future__ import annotations

from typing import Any

from .. import ast
from ..diagnostics import Note, Span, warning
from ..layers import ACTIVATIONS, FOREIGN_PARAMS, LAYERS, Act, LayerKind, ParamError, foreign, p_act, resolve_params
from ..util import fmt_shape, show
from .core import Core, Env, suggest
from .expr import activation, evaluate


def _literal(b: Core, e, env: Env, positional: bool):
    """An argument written as a literal (a number, size, string or word that names nothing), as a key:
    its value resolves the same wherever it is written. None for anything else."""
    t = type(e)
    if t is ast.Num:
        return (type(e.value), repr(e.value))  # 1 and 1.0 differ, and so do 0.0 and -0.0
    if t is ast.Size:
        return ("x", e.dims)
    if t is ast.Str:
        return ("s", e.value)
    if t is ast.Name and e.id not in env.vars and not (positional and (e.id in LAYERS or e.id in b.blocks)):
        return ("w", e.id)
    return None


def _memo_key(b: Core, kind: LayerKind, el: ast.Layer, env: Env, positional):
    """The key under which a layer's resolved attrs are kept for the rest of the build (Core.resolved): a
    layer of the spec's own file whose arguments are all literals, where the defaults in force are the
    file's top-level ones or none. A spec written out in full repeats `conv f=3 n=64 p=same` thousands
    of times, and the editor checks it on every keystroke."""
    if b.resolved is None or env.file != b.top_file or not (not env.defaults or env.defaults is b.top_defaults):
        return None
    key = [kind.name, env.defaults is b.top_defaults]
    for e in positional:
        k = _literal(b, e, env, True)
        if k is None:
            return None
        key.append(k)
    key.append(None)
    for kw in el.kwargs:
        k = _literal(b, kw.value, env, False)
        if k is None:
            return None
        key.append((kw.name, k))
    return tuple(key)


def resolve(b: Core, kind: LayerKind, el: ast.Layer, env: Env, positional) -> dict:
    """A layer's arguments -> its attrs: positional and named arguments, then the defaults in force, then
    the registry's converters and defaults. Every mistake is reported at the argument that makes it.

    A layer written with literal arguments is resolved once per build (`_memo_key`); the same arguments
    again get a copy of the same attrs."""
    key = _memo_key(b, kind, el, env, positional)
    if key is not None:
        hit = b.resolved.get(key)
        if hit is not None:
            return dict(hit)
    reported = len(b.diags)
    attrs = _resolve(b, kind, el, env, positional)
    if key is not None and len(b.diags) == reported:
        b.resolved[key] = dict(attrs)
    return attrs


def _resolve(b: Core, kind: LayerKind, el: ast.Layer, env: Env, positional) -> dict:
    given: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for e in positional:
        if isinstance(e, ast.Name) and (e.id in LAYERS or e.id in b.blocks) and e.id not in env.vars:
            b.fail("missing-arrow", f"`{e.id}` is a layer, not an argument of `{kind.name}`", e.span,
                   help=f"is `->` missing before `{e.id}`?")
    if len(positional) > len(kind.positional):
        extra = positional[len(kind.positional)]
        help_ = None
        if isinstance(extra, ast.Name) and (extra.id in LAYERS or extra.id in b.blocks):
            help_ = f"is `->` missing before `{extra.id}`?"
        elif kind.positional:
            named = next((p for p in kind.params if p not in kind.positional), None)
            help_ = f"`{kind.name}` takes {len(kind.positional)} positional argument ({kind.positional[0]}); " \
                    "name the others" + (f", e.g. `{named}=...`" if named else "")
        elif kind.params:
            help_ = f"name the argument, e.g. `{next(iter(kind.params))}=...`"
        else:
            help_ = f"`{kind.name}` takes no arguments"
        b.fail("unexpected-argument", f"unexpected argument `{_src(extra)}` for `{kind.name}`", extra.span,
               help=help_)
    for pname, e in zip(kind.positional, positional, strict=False):
        given[pname] = evaluate(b, e, env)
        spans[pname] = e.span
        takes_words = hasattr(kind.params[pname].convert, "options")
        if kind.window and pname != kind.window and (isinstance(e, ast.Size) or (
                takes_words and isinstance(given[pname], int) and not isinstance(given[pname], bool))):
            # `conv 3x3 n=64`, `pool 2`: a window size given where another parameter goes first
            b.fail("bad-param", f"`{_src(e)}` is not `{kind.name}`'s `{pname}`", e.span,
                help=f"write the {'filter' if kind.group == 'conv' else 'window'} size as "
                     f"`{kind.window}={_src(e)}`")
    for kw in el.kwargs:
        if kw.name not in kind.params:
            ours = foreign(FOREIGN_PARAMS, kw.name)
            if ours in kind.params:
                help_ = f"`{kind.name}` writes it `{ours}`: `{ours}={_src(kw.value)}`"
            else:
                help_ = suggest(kw.name, kind.params) or f"`{kind.name}` takes {param_list(kind)}"
            b.fail("unknown-param", f"`{kind.name}` has no parameter `{kw.name}`", kw.span, help=help_)
        if kw.name in given:
            b.fail("duplicate-param", f"`{kw.name}` is given twice", kw.span)
        given[kw.name] = evaluate(b, kw.value, env)
        spans[kw.name] = kw.value.span
    # written on the layer as a value (a bare block parameter, `bn=bn`, is the caller's to set: not written)
    exprs = {**dict(zip(kind.positional, positional, strict=False)), **{kw.name: kw.value for kw in el.kwargs}}
    written = {p for p, e in exprs.items() if not (isinstance(e, ast.Name) and e.id in env.vars)}
    for pname, (value, span) in env.defaults.get(kind.name, {}).items():
        if pname not in given:
            given[pname] = value
            spans[pname] = span
    for pname, v in given.items():
        if kind.params[pname].convert is p_act and type(v) is not Act and isinstance(v, str) and v in ACTIVATIONS:
            # a bare `act=leakyrelu` takes the activation's `defaults` too, as the layer `leakyrelu` does
            given[pname] = activation(b, v, (), (), env, spans[pname])
    try:
        attrs = resolve_params(kind, given)
    except ParamError as e:
        pname = e.param
        if e.missing:
            b.fail("missing-param", str(e), el.span, help=e.help)
        b.fail("bad-param", f"`{kind.name} {pname}`: {e}", spans.get(pname, el.span), help=e.help)
    if env.file != b.top_file and kind.name in b.top_defaults:
        _unreached_defaults(b, kind, given, attrs, written)
    return attrs


def _unreached_defaults(b: Core, kind: LayerKind, given: dict, attrs: dict, written: set[str]) -> None:
    """Warn, where it is written, about a top-level `defaults` that would change a layer of an imported
    block: an imported file's blocks keep their own defaults (docs/language.md, Defaults)."""
    for pname, (value, span) in b.top_defaults[kind.name].items():
        if pname in written or span in b.warned:
            continue
        try:
            wanted = resolve_params(kind, {**given, pname: value})[pname]
        except ParamError:
            continue
        if wanted == attrs[pname]:
            continue
        b.warned.add(span)
        outer = b.calls[0] if b.calls else None
        block = b.calls[-1][0] if b.calls else "?"
        takes = [name for name, _ in b.calls if pname in {p.name for p in b.blocks[name].node.params}]
        if takes:
            help_ = f"`{takes[0]}` takes `{pname}`: pass it, e.g. `{takes[0]}(..., {pname}={show(value)})`"
        else:
            help_ = "an imported file's blocks keep their own defaults; write the block in this file to change it"
        b.diags.append(warning(
            "default-not-imported",
            f"this default does not reach the `{kind.name}` layers of imported block `{block}`", span,
            notes=[Note(f"`{outer[0]}` is expanded from here", outer[1])] if outer else (),
            help=help_,
        ))


def _src(e) -> str:
    """An argument as the user wrote it, for messages."""
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Num):
        return str(e.value)
    if isinstance(e, ast.Size):
        return fmt_shape(e.dims)
    return "..."


def param_list(kind: LayerKind) -> str:
    return ", ".join(f"`{p}`" for p in kind.params) or "no parameters"
