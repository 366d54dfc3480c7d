"""The `cnndsl` command line: the only module that prints or exits.

Exit codes: 0 ok, 1 the spec has errors (diagnostics printed), 2 usage error (bad command line,
unreadable file), 3 internal error (a bug in cnndsl: please report it with the traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .diagnostics import CompileError, render
from .ir import MAX_NODES

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """The command line asks for something impossible (missing file, bad option value)."""


def _shape_arg(text: str):
    from .model import parse_shape

    try:
        return parse_shape(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the .cnn spec")
    p.add_argument("--input", type=_shape_arg, metavar="HxWxC", help="override the spec's input shape")
    p.add_argument("--max-layers", type=int, default=MAX_NODES, metavar="N",
                   help=f"refuse specs that expand to more layers (default {MAX_NODES:,})")


def _depth_arg(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of levels such as 1, got {text!r}")
    return int(text)


def _add_diagram_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collapse", action="store_true",
                   help="fold every block, residual and branches into one node with its totals")
    p.add_argument("--depth", type=_depth_arg, metavar="N",
                   help="draw N levels of nested blocks, fold the deeper ones (0 folds every top-level block)")
    p.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default="TB", type=str.upper,
                   help="layout direction: TB top to bottom (default), LR left to right")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cnndsl",
        description="Write down, check, cost, draw and run convolutional network architectures.",
        epilog="exit codes: 0 ok, 1 the spec has errors, 2 usage error, 3 internal error",
    )
    ap.add_argument("--version", action="version", version=f"cnndsl {__version__}")
    ap.add_argument("--format", choices=("full", "concise", "json"), default="full",
                    help="how to print diagnostics (default: full, with the source line and a caret)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("check", help="check a spec: shapes, parameters, structure")
    _add_spec_args(p)
    p = sub.add_parser("summary", help="per-layer table: activation shape and size, parameters, MACs")
    _add_spec_args(p)
    p.add_argument("--json", action="store_true", help="print a stable JSON document instead of the table")
    p = sub.add_parser("layers", help="list the layer kinds and their parameters")
    p.add_argument("kind", nargs="?", help="show one kind in detail")
    p = sub.add_parser("render", help="draw the architecture with Graphviz: SVG, PNG, PDF or DOT")
    _add_spec_args(p)
    p.add_argument("-o", "--output", metavar="OUT",
                   help="OUT.svg, .png, .pdf or .dot; `-` prints the DOT text (default: the spec's name with .svg, "
                        "beside it)")
    _add_diagram_args(p)
    return ap


def _load(args):
    from .model import compile_file

    try:
        return compile_file(args.file, args.input, args.max_layers)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise UsageError(f"cannot read `{args.file}`: {e.strerror or e}") from None


def _print_warnings(model, fmt: str) -> None:
    for w in model.warnings:
        print(render(w, model.sources, "concise" if fmt == "json" else fmt), file=sys.stderr)


def cmd_check(args) -> int:
    m = _load(args)
    _print_warnings(m, args.format)
    t = m.totals
    print(f"{args.file}: ok: {m.name}, {len(m.layers)} layers, input {'x'.join(map(str, m.input_shape))} -> "
          f"{', '.join('x'.join(map(str, m.graph.nodes[o]['shape'])) for o in m.outputs)}, "
          f"{t.params:,} parameters, {t.macs:,} MACs")
    return EXIT_OK


def cmd_summary(args) -> int:
    from .backends import summary

    m = _load(args)
    _print_warnings(m, args.format)
    print(summary.to_json(m) if args.json else summary.to_text(m))
    return EXIT_OK


def cmd_layers(args) -> int:
    from .layers import INTERNAL, LAYERS, REQUIRED

    kinds = [k for n, k in LAYERS.items() if n not in INTERNAL]
    if args.kind:
        if args.kind not in LAYERS or args.kind in INTERNAL:
            raise UsageError(f"unknown layer kind `{args.kind}`")
        kinds = [LAYERS[args.kind]]
    for k in kinds:
        pos = f" [{' '.join(k.positional)}]" if k.positional else ""
        print(f"{k.name}{pos}: {k.doc}")
        if args.kind or True:
            for name, p in k.params.items():
                default = "required" if p.default is REQUIRED else f"default {_show(p.default)}"
                print(f"    {name:<6} {p.doc} ({default})")
    return EXIT_OK


def _show(v) -> str:
    if v is None:
        return "see above"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def draw(model, out: str, args) -> int:
    """Write the diagram of `model` to `out` with the --collapse/--depth/--rankdir options in `args`."""
    from .backends import dot

    try:
        done = dot.render_file(model, out, collapse=args.collapse, depth=args.depth, rankdir=args.rankdir)
    except OSError as e:
        raise UsageError(f"cannot write `{out}`: {e.strerror or e}") from None
    except dot.RenderError as e:  # our DOT text is always valid, so this is a bug or a broken Graphviz
        print(f"cnndsl: internal error: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    if done.image:
        print(f"wrote {done.path}")
    else:
        print(f"cnndsl: Graphviz's `dot` is not on PATH, so wrote {done.path} instead of {out}; "
              f"{dot.INSTALL_HINT}", file=sys.stderr)
    return EXIT_OK


def _check_output(out: str) -> None:
    """Refuse an unknown format or a missing folder before compiling, as a usage error."""
    import os

    from .backends.dot import FormatError, output_format

    try:
        output_format(out)
    except FormatError as e:
        raise UsageError(str(e)) from None
    folder = os.path.dirname(out) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write `{out}`: the folder `{folder}` does not exist")
    if os.path.isdir(out):
        raise UsageError(f"cannot write `{out}`: it is a folder")


def cmd_render(args) -> int:
    from pathlib import Path

    from .backends import dot

    out = args.output or str(Path(args.file).with_suffix(".svg"))
    if out != "-":
        _check_output(out)
    m = _load(args)
    _print_warnings(m, args.format)
    if out == "-":
        sys.stdout.write(dot.to_dot(m, collapse=args.collapse, depth=args.depth, rankdir=args.rankdir))
        return EXIT_OK
    return draw(m, out, args)


COMMANDS = {"check": cmd_check, "summary": cmd_summary, "layers": cmd_layers, "render": cmd_render}


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 for --help
        return int(e.code or 0)
    try:
        return COMMANDS[args.command](args)
    except CompileError as e:
        if args.format == "json":
            from .diagnostics import dumps

            print(dumps(e.diagnostics), file=sys.stderr)
        else:
            for d in e.diagnostics:
                print(render(d, e.sources, args.format), file=sys.stderr)
            n = sum(d.severity == "error" for d in e.diagnostics)
            print(f"{n} error{'s' if n != 1 else ''} in {getattr(args, 'file', 'the spec')}", file=sys.stderr)
        return EXIT_SPEC
    except UsageError as e:
        print(f"cnndsl: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # noqa: BLE001 - anything else is a bug in cnndsl, shown as one
        print("cnndsl: internal error: this is a bug in cnndsl, not in your spec; please report it with the "
              "spec and this traceback:", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL
