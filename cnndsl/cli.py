"""The `cnndsl` command line: the only module that prints or exits.

Exit codes: 0 ok, 1 the spec has errors (diagnostics printed), 2 usage error (bad command line,
unreadable file, or Graphviz missing for an image), 3 internal error (a bug in cnndsl: please report it
with the traceback).

Startup is kept light (`--help` and `--version` import no compiler module): everything else is
imported inside the command that needs it.
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback
from collections.abc import Callable

from . import __version__
from .util import decimal_bytes as _kb
from .util import fmt_shape, gc_paused, prod
from .util import show as _show

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# The defaults of cnndsl.ir.MAX_NODES and cnndsl.model.MAX_PARAMS / MAX_MEMORY, written here so that
# `--help` need not import the compiler (tests/test_cli_conventions.py checks they agree).
MAX_NODES, MAX_PARAMS, MAX_MEMORY = 250_000, 2**31, 2**34
STDIN = "-"


class UsageError(Exception):
    """The command line asks for something impossible (missing file, bad option value)."""


def _shape_arg(text: str):
    from .model import parse_shape

    try:
        return parse_shape(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


MAX_SHOWN_DIAGNOSTICS = 200  # more scroll past a terminal; JSON has them all
MAX_THREADS = 256  # onnxruntime crashes (100,000) or hangs (3,000) on absurd thread counts
MAX_COUNT = 10**6  # runs, repeats, top classes
MAX_SEED = 2**63 - 1


def _whole(lo: int, hi: int):
    """An argparse type: a whole number from lo to hi, refused in one line otherwise."""

    def whole(text: str) -> int:
        t = text.strip().replace("_", "")
        if not t.lstrip("-").isdigit() or len(t) > 30 or not lo <= int(t) <= hi:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo:,} to {hi:,}, got {text[:40]!r}")
        return int(t)

    return whole


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v <= 10**6:
        raise argparse.ArgumentTypeError(f"expected a number of seconds such as 60, got {text[:40]!r}")
    return v


def _add_timeout(p: argparse.ArgumentParser, default: float, what: str) -> None:
    p.add_argument("--timeout", type=_seconds, default=default, metavar="SECONDS",
                   help=f"stop {what} after this long, with a message (default {default:g})")


def _add_import_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-import", action="append", metavar="DIR",
                   help="let `import \"...\"` read specs from DIR too (repeatable); by default imports stay inside the "
                        "spec's folder tree and the bundled libraries")


def _depth_arg(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of levels such as 1, got {text!r}")
    return int(text)


def _add_memory_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=_whole(1, 2**31), default=1, metavar="N",
                   help="batch size of the memory figures (default 1)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16", "int8"), default="float32",
                   help="bytes per number of weights and activations (default float32; int8: inference only)")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd",
                   help="optimizer state in the training memory: sgd none, momentum one buffer, adam two "
                        "(default sgd)")


def _batches_arg(text: str) -> list[int]:
    parts = [b.strip() for b in text.split(",")]
    if not parts or not all(b.isdigit() and int(b) > 0 for b in parts):
        raise argparse.ArgumentTypeError(f"expected batch sizes such as 1,8,32, got {text!r}")
    return list(dict.fromkeys(int(b) for b in parts))


def _bytes_arg(text: str) -> int:
    from .model import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --- the subcommands: each is declared once, by @subcommand on its handler ------------------------


class Command:
    """A subcommand: its handler, its help, and `declare(parser)`, which adds its own arguments. With
    `many`, it takes several FILEs (args.files) and the handler sees one at a time as args.file."""

    # NOTE: a plain class, not a dataclass: `cnndsl --help` should not pay for importing dataclasses
    def __init__(self, name: str, handler: Callable[[argparse.Namespace], int], help: str,
                 declare: Callable[[argparse.ArgumentParser], None], description: str | None = None,
                 many: bool = False) -> None:
        self.name, self.handler, self.help, self.declare = name, handler, help, declare
        self.description, self.many = description, many


COMMANDS: dict[str, Command] = {}


def subcommand(name: str, help: str, args: Callable[[argparse.ArgumentParser], None] = lambda p: None, *,
               description: str | None = None, many: bool = False):
    """Register the decorated handler as `cnndsl NAME`: the one place a subcommand is declared.

    `args(parser)` adds its arguments; the shared options (--format, --color) are added to every
    subcommand, so they work before or after its name. With `many`, the parser takes `files` (FILE...,
    `-` for stdin) and the handler runs once per file with `args.file` set; the exit code is the worst.
    """
    def wrap(handler):
        COMMANDS[name] = Command(name, handler, help, args, description, many)
        return handler

    return wrap


def _add_shared(p: argparse.ArgumentParser, default) -> None:
    """Options every subcommand takes, before or after its name; `default` is SUPPRESS on the
    subcommands so that a value given before the name is kept."""
    p.add_argument("--format", choices=("full", "concise", "json"), default=default("full"),
                   help="how to print diagnostics: full (the source line and a caret; default), concise (one line "
                        "each), json (a JSON list on stdout)")
    p.add_argument("--color", "--colour", choices=("auto", "always", "never"), default=default("auto"),
                   help="colour the diagnostics: auto (on a terminal, unless NO_COLOR is set; FORCE_COLOR forces "
                        "it), always, never")


def _add_spec_args(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("files", nargs="+", metavar="FILE", help="the .cnn specs (`-` reads standard input)")
    else:
        p.add_argument("file", help="the .cnn spec (`-` reads standard input)")
    _add_import_arg(p)
    p.add_argument("--shape", type=_shape_arg, metavar="HxWxC",
                   help="override the spec's input shape (H x W x C, or N for a vector)")
    # the old name of --shape, kept working but no longer shown: `--input` is `run`'s input array
    p.add_argument("--input", dest="shape", type=_shape_arg, help=argparse.SUPPRESS)
    p.add_argument("--max-layers", type=_whole(1, 10**9), default=MAX_NODES, metavar="N",
                   help=f"refuse specs that expand to more layers (default {MAX_NODES:,})")


def _add_fold_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--collapse", action="store_true",
                   help=f"{what} each innermost block (a bottleneck, an Inception module) with its totals")
    p.add_argument("--depth", type=_depth_arg, metavar="N",
                   help="show N levels of nested blocks, fold the deeper ones (0 folds every top-level block)")


def _add_diagram_args(p: argparse.ArgumentParser) -> None:
    _add_fold_args(p, "one node for")
    p.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default="TB", type=str.upper,
                   help="layout direction: TB top to bottom (default), LR left to right")
    _add_timeout(p, 60, "Graphviz's layout")
    p.add_argument("--dpi", type=int, default=None, metavar="N",
                   help="resolution of a PNG (default 200; a bitmap Graphviz cannot make that large is drawn "
                        "folded, or refused); SVG and PDF are vector formats")
    p.add_argument("--rf", action="store_true",
                   help="write each layer's receptive field, effective stride and padding in its box")


def _add_limit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-params", type=_whole(0, 2**60), default=MAX_PARAMS, metavar="N",
                   help=f"refuse, before allocating anything, a network with more parameters (default {MAX_PARAMS:,})")
    p.add_argument("--max-memory", type=_bytes_arg, default=MAX_MEMORY, metavar="SIZE",
                   help="refuse a network whose float32 weights and activations need more (default 16G; K, M, G, T "
                        "are powers of 1024)")


def _add_weight_args(p: argparse.ArgumentParser) -> None:
    _add_limit_args(p)
    p.add_argument("--seed", type=_whole(0, MAX_SEED), default=0,
                   help="seed of the default weights: He (Kaiming) uniform for conv and fc, ones and zeros for "
                        "batch norm; the same spec and seed give the same bytes (default 0)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--weights", metavar="FILE", help="trained weights: an .npz by initializer name (`cnndsl weights`), "
                   "or "
                   "a PyTorch state dict (.pth), .safetensors file or ONNX model, mapped as `weights --from` maps them")
    w.add_argument("--no-weights", action="store_true", help="zero conv and fc weights: fast, for shapes and timing")


def _check_args(p):
    _add_spec_args(p, many=True)


def _summary_args(p):
    _add_spec_args(p, many=True)
    p.add_argument("--json", action="store_true",
                   help="print a stable JSON document instead of the table (every layer, its parameters, and the "
                        "rows the options ask for)")
    _add_fold_args(p, "one row for")
    p.add_argument("--tree", action="store_true",
                   help="show the layers as a tree of their blocks, each indented under its block with its depth "
                        "(torchinfo's layout); --depth limits the levels")
    p.add_argument("--columns", type=_columns_arg, default=[], metavar="C,C,...",
                   help=f"extra columns: {', '.join(EXTRA_COLUMNS)}")
    p.add_argument("--width", type=int, metavar="N",
                   help="the widest a line may be (default: the terminal's width; unlimited when not a terminal)")
    _add_memory_args(p)


EXTRA_COLUMNS = ("kernel", "stride", "padding", "input", "percent")


def _columns_arg(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cols if c not in EXTRA_COLUMNS]
    if bad or not cols:
        raise argparse.ArgumentTypeError(f"unknown column {bad[0]!r}; choose from {', '.join(EXTRA_COLUMNS)}"
                                         if bad else f"expected columns such as kernel,stride, got {text!r}")
    return list(dict.fromkeys(cols))


def _layers_args(p):
    p.add_argument("kind", nargs="?", help="show one kind in detail")


def _render_args(p):
    _add_spec_args(p, many=True)
    p.add_argument("-o", "--output", metavar="OUT",
                   help="OUT.svg, .png, .pdf or .dot; `-` prints the DOT text (default: the spec's name with .svg, "
                        "beside it; one spec only)")
    _add_diagram_args(p)


def _compile_args(p):
    _add_spec_args(p, many=True)
    p.add_argument("-o", "--output", metavar="OUT.onnx", help="where to write it (default: the spec's name with .onnx, "
                   "or .py for --to pytorch, beside it; one spec only)")
    p.add_argument("--to", choices=("onnx", "pytorch"), default="onnx",
                   help="onnx (default), or pytorch: one self-contained nn.Module file (.py) whose state_dict keys "
                        "are cnndsl's weight names")
    _add_weight_args(p)
    p.add_argument("--external-data", action="store_true",
                   help="keep the weights in OUT.onnx.data beside the model (automatic above protobuf's 2 GB)")
    p.add_argument("--svg", metavar="PATH",
                   help="also draw the architecture, as `cnndsl render` does (.svg, .png, .pdf or .dot)")
    _add_diagram_args(p)


def _run_args(p):
    p.add_argument("file", help="a .cnn spec or an .onnx model")
    p.add_argument("--input", metavar="X.npy", dest="array",
                   help="the input array: one image as H x W x C (the notes' layout; H x W for one channel) or a "
                        "batch as N x C x H x W (ONNX's layout), told apart by their shapes; default: random normal "
                        "values from --seed")
    p.add_argument("--shape", type=_shape_arg, metavar="HxWxC", help="run a .cnn spec at another input shape")
    p.add_argument("--batch", type=_whole(1, 2**31), default=1, metavar="N",
                   help="batch size of the random input (default 1)")
    p.add_argument("--top", type=_whole(1, MAX_COUNT), default=5, metavar="K",
                   help="classes to show for a vector output (default 5)")
    p.add_argument("--repeat", type=_whole(0, MAX_COUNT), default=10, metavar="R",
                   help="timed runs after a warm-up run; the latency is their median (default 10)")
    p.add_argument("--max-layers", type=_whole(1, 10**9), default=MAX_NODES, metavar="N", help=argparse.SUPPRESS)
    _add_timeout(p, 60, "a run that takes too long (an .onnx model can loop forever)")
    _add_import_arg(p)
    _add_weight_args(p)


def _weights_args(p):
    _add_spec_args(p)
    p.add_argument("-o", "--output", metavar="OUT.npz",
                   help="write the default weights (from --seed) as an .npz to fill with trained values")
    p.add_argument("--from", dest="source", metavar="FILE",
                   help="map a PyTorch state dict (.pth, .pt), .safetensors file, ONNX model or .npz onto the spec's "
                        "weights (by name where the names are cnndsl's, else by order and shape) and print the "
                        "mapping; with -o, write the mapped weights as an .npz")
    p.add_argument("--seed", type=_whole(0, MAX_SEED), default=0,
                   help="seed of the template's He uniform weights (default 0)")
    _add_limit_args(p)


def _bench_args(p):
    p.add_argument("files", nargs="+", metavar="FILE", help="a .cnn spec or an .onnx model; give several to compare")
    p.add_argument("--shape", type=_shape_arg, metavar="HxWxC", help="time the .cnn specs at another input shape")
    p.add_argument("--batch", type=_batches_arg, default=[1, 8, 32], metavar="B,B,...",
                   help="batch sizes (default 1,8,32)")
    p.add_argument("--threads", type=_whole(0, MAX_THREADS), default=0, metavar="N",
                   help="onnxruntime intra-op threads (default 0: onnxruntime's choice, one per core)")
    p.add_argument("--warmup", type=_whole(0, MAX_COUNT), default=2, metavar="W",
                   help="untimed runs per batch size first (default 2)")
    p.add_argument("--runs", type=_whole(1, MAX_COUNT), default=10, metavar="R",
                   help="timed runs per batch size (default 10)")
    p.add_argument("--providers", metavar="P,P,...",
                   help="onnxruntime execution providers in order of preference: cpu (default), cuda, tensorrt, "
                        "or any full name such as OpenVINOExecutionProvider; GPU ones need onnxruntime-gpu")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    p.add_argument("--max-layers", type=_whole(1, 10**9), default=MAX_NODES, metavar="N", help=argparse.SUPPRESS)
    _add_timeout(p, 600, "the whole benchmark")
    _add_import_arg(p)
    _add_weight_args(p)


def _import_args(p):
    p.add_argument("file", metavar="MODEL.onnx")
    p.add_argument("-o", "--output", metavar="OUT.cnn",
                   help="the spec (default: the model's name with .cnn, beside it)")
    p.add_argument("--weights-out", metavar="W.npz", help="the weights (default: the spec's name with .npz)")
    p.add_argument("--input-shape", type=_shape_arg, metavar="HxWxC",
                   help="pin the model's dynamic input dimensions, e.g. 224x224x3")
    p.add_argument("--name", help="the network's name in the spec (default: the model's file name)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip running both models in onnxruntime to check they agree (faster)")


def _completion_args(p):
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete for")


class _Parser(argparse.ArgumentParser):
    """argparse, plus a did-you-mean for a mistyped subcommand."""

    def error(self, message: str):
        import re

        m = re.search(r"invalid choice: '([^']*)'", message)
        if m and "COMMAND" in message:
            import difflib

            close = difflib.get_close_matches(m[1], list(COMMANDS), n=1, cutoff=0.5)
            message = f"unknown command `{m[1]}`" + (f"; did you mean `{close[0]}`?" if close else
                                                      f"; the commands are {', '.join(COMMANDS)}")
        super().error(message)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, the arguments of that subcommand alone are declared (the others
    keep their names and help, for `--help` and the did-you-mean): `cnndsl check` pays for one, not 25."""
    ap = _Parser(
        prog="cnndsl",
        description="Write down, check, cost, draw and run convolutional network architectures.",
        epilog="exit codes: 0 ok, 1 the spec has errors, 2 usage error (or Graphviz missing for an image), "
               "3 internal error",
    )
    ap.add_argument("--version", action="version", version=f"cnndsl {__version__}")
    _add_shared(ap, lambda v: v)
    shared = argparse.ArgumentParser(add_help=False)
    _add_shared(shared, lambda v: argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser)
    sub.required = True
    for c in COMMANDS.values():
        p = sub.add_parser(c.name, help=c.help, description=c.description or c.help[:1].upper() + c.help[1:],
                           parents=[shared])
        if only is None or c.name == only:
            c.declare(p)
    return ap


def _named_command(argv: list[str] | None) -> str | None:
    """The subcommand the command line names (its first word that is one), or None: the parser is built whole
    for `cnndsl --help`, a misspelt command, or help asked before the command."""
    for a in sys.argv[1:] if argv is None else argv:
        if a in ("-h", "--help"):
            return None
        if a in COMMANDS:
            return a
    return None


_PROCESS = {"command_line": False}  # True in `main()` run as the `cnndsl` command (argv from sys.argv)


@gc_paused(freeze=lambda: _PROCESS["command_line"])  # not when main() is called from Python
def _load(args, path: str | None = None):
    """Compile the spec at `path` (default args.file; `-` reads standard input, named `<stdin>`)."""
    from .model import compile_file, compile_text

    path = path or args.file
    shape = getattr(args, "shape", None)
    if path == STDIN:
        from .safeio import MAX_SPEC_BYTES

        data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)  # bounded like a spec file, before decoding
        if len(data) > MAX_SPEC_BYTES:
            raise UsageError(f"standard input holds more than {MAX_SPEC_BYTES >> 20} MiB; a spec is at most that")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise UsageError(f"standard input is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
                             ) from None
        return compile_text(text, "<stdin>", shape, args.max_layers, getattr(args, "allow_import", None) or ())
    from .safeio import FileProblem

    try:
        return compile_file(path, shape, args.max_layers, getattr(args, "allow_import", None) or ())
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise UsageError(f"cannot read `{path}`: {e.strerror or e}") from None
    except FileProblem as e:
        raise UsageError(str(e)) from None


def _print_warnings(model, fmt: str) -> None:
    from .diagnostics import render

    for w in model.warnings:
        print(render(w, model.sources, "concise" if fmt == "json" else fmt), file=sys.stderr)


@subcommand("check", "check specs: shapes, parameters, structure; one line each on success", _check_args,
            many=True)
def cmd_check(args) -> int:
    m = _load(args)
    if args.format == "json":  # stdout is exactly one JSON list of diagnostics, warnings included
        args.diagnostics.extend(m.warnings)
        return EXIT_OK
    _print_warnings(m, args.format)
    t = m.totals
    print(f"{m.path}: ok: {m.name}, {len(m.layers)} layers, input {fmt_shape(m.input_shape)} -> "
          f"{', '.join(fmt_shape(m.layer_graph.nodes[o]['shape']) for o in m.outputs)}, "
          f"{t.params:,} parameters, {t.macs:,} MACs")
    return EXIT_OK


@subcommand("summary", "per-layer table: activation shape and size, parameters, MACs (a .cnn spec or an .onnx "
            "model)", _summary_args, many=True)
def cmd_summary(args) -> int:
    from .backends import summary

    if args.file != STDIN and args.file.lower().endswith(".onnx"):
        return _summary_onnx(args)
    m = _load(args)
    _print_warnings(m, args.format)
    options = dict(collapse=args.collapse, depth=args.depth, tree=args.tree, columns=args.columns,
                   batch=args.batch, dtype=args.dtype, optimizer=args.optimizer)
    if args.json:
        args.documents.append(summary.to_dict(m, **options))
    else:
        print(summary.to_text(m, **options, width=_width(args)))
    return EXIT_OK


def _width(args) -> int | None:
    """--width, else the terminal's width when stdout is one (None: no limit, as in a pipe or a file)."""
    if args.width:
        return args.width
    if sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return None


def _summary_onnx(args) -> int:
    """`cnndsl summary MODEL.onnx`: an ONNX file cnndsl did not write, node by node."""
    import os

    from .backends import onnx_summary

    if not os.path.isfile(args.file):
        raise UsageError(f"cannot read `{args.file}`: " + ("it is a folder" if os.path.isdir(args.file)
                                                           else "no such file"))
    try:
        s = onnx_summary.summarize(args.file, getattr(args, "shape", None))
    except onnx_summary.OnnxFileError as e:
        raise UsageError(str(e)) from None
    if args.json:
        args.documents.append(s.to_dict())
    else:
        print(s.to_text(width=_width(args)))
    return EXIT_OK


def _explain_args(p):
    _add_spec_args(p)
    p.add_argument("layers", nargs="*", metavar="LAYER",
                   help="layers to explain (a block's or named value's name selects every layer inside); default all")
    p.add_argument("--json", action="store_true", help="print the steps as JSON")


@subcommand("explain", "the notes' arithmetic of each layer with the numbers filled in", _explain_args,
            description="For each layer (or the named ones): output size, parameters and MACs as the lecture "
                        "notes write them, with the numbers filled in; the depthwise-separable comparison; the "
                        "receptive field.")
def cmd_explain(args) -> int:
    import json

    from .analyses import explain

    m = _load(args)
    _print_warnings(m, args.format)
    try:
        items = explain.explain(m, args.layers)
    except KeyError as e:
        import difflib

        close = difflib.get_close_matches(str(e.args[0]), [r.name for r in m.layers], n=3)
        hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else "; `cnndsl summary` lists them"
        raise UsageError(f"no layer or block `{e.args[0]}` in {args.file}{hint}") from None
    print(json.dumps([i.to_dict() for i in items], indent=2, ensure_ascii=False) if args.json
          else explain.to_text(m, items))
    return EXIT_OK


def _diff_args(p):
    p.add_argument("old", help="the first .cnn spec (A)")
    p.add_argument("new", help="the second .cnn spec (B)")
    _add_import_arg(p)
    p.add_argument("--json", action="store_true", help="print a JSON document")
    p.add_argument("--exit-code", action="store_true",
                   help="exit 1 when the specs differ in any layer or total, 0 when they do not (as `git diff "
                        "--exit-code`); without it, 0 either way")
    p.add_argument("--max-layers", type=_whole(1, 10**9), default=MAX_NODES, metavar="N", help=argparse.SUPPRESS)


@subcommand("diff", "compare two specs: per-layer and total deltas, added and removed layers", _diff_args,
            description="Compare two specs layer by layer (matched by name, then by structure): shape, parameter "
                        "and MAC deltas, added and removed layers and blocks, totals.")
def cmd_diff(args) -> int:
    from .analyses import diff

    args.shape = None
    a = _load(args, args.old)
    _print_warnings(a, args.format)
    b = _load(args, args.new)
    _print_warnings(b, args.format)
    d = diff.diff(a, b)
    print(diff.to_json(d) if args.json else diff.to_text(d))
    return 1 if args.exit_code and d.differs else EXIT_OK


@subcommand("layers", "list the layer kinds and their parameters", _layers_args)
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
        required = [n for n, p in k.params.items() if p.default is REQUIRED]
        for name in required + [n for n in k.params if n not in required]:
            p = k.params[name]
            if p.default is REQUIRED:
                note = " (required)"
            elif p.default is None:  # no fixed default: the doc says what happens
                note = "" if "default" in p.doc else " (optional)"
            else:
                note = f" (default {_show(p.default)})"
            print(f"    {name:<6} {p.doc}{note}")
    return EXIT_OK


def draw(model, out: str, args) -> int:
    """Write the diagram of `model` to `out` with the --collapse/--depth/--rankdir/--dpi options in `args`."""
    from .backends import dot

    try:
        done = dot.render_file(model, out, collapse=args.collapse, depth=args.depth, rankdir=args.rankdir,
                               timeout=getattr(args, "timeout", None) or 60, dpi=args.dpi, rf=args.rf)
    except OSError as e:
        raise UsageError(f"cannot write `{getattr(out, 'path', out)}`: {e.strerror or e}") from None
    except dot.TooLarge as e:
        raise UsageError(f"{e}; nothing written: write .svg or .pdf (no size limit), lower --dpi, or fold more "
                         f"with --depth 0") from None
    except dot.RenderError as e:  # our DOT text is valid: Graphviz ran out of time or memory
        return _fail(str(e))
    if not done.image:  # the user asked for an image we could not make: not a success
        print(f"cnndsl: error: Graphviz's `dot` is not on PATH, so wrote {done.path} instead of "
              f"{getattr(out, 'path', out)}; "
              f"{dot.INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {done.path}")
    if done.folded:
        print(f"cnndsl: note: {model.name} is too large for a {done.format.upper()} bitmap, so it is drawn with "
              f"every innermost block folded (--collapse); write .svg or .pdf for every layer", file=sys.stderr)
    return EXIT_OK


def _check_output(out: str, args, inputs=()):
    """Refuse an unknown format or an unusable path before compiling, as a usage error; the checked Target."""
    from .backends.dot import FormatError, output_format

    dpi = getattr(args, "dpi", None)
    if dpi is not None and not 10 <= dpi <= 2400:
        raise UsageError(f"--dpi must be between 10 and 2400, got {dpi}")
    target = _writable(out, inputs)
    try:
        if not target.stream or target.path.suffix:
            output_format(out)
    except FormatError as e:
        raise UsageError(str(e)) from None
    return target


@subcommand("render", "draw the architecture with Graphviz: SVG, PNG, PDF or DOT", _render_args, many=True)
def cmd_render(args) -> int:
    from pathlib import Path

    from .backends import dot

    if args.file == STDIN and not args.output:
        raise UsageError("a spec read from standard input needs `-o OUT` (`-o -` prints the DOT text)")
    out = args.output or str(Path(args.file).with_suffix(".svg"))
    if out != "-":
        out = _check_output(out, args, [args.file])
    m = _load(args)
    _print_warnings(m, args.format)
    if out == "-":
        sys.stdout.write(dot.to_dot(m, collapse=args.collapse, depth=args.depth, rankdir=args.rankdir, rf=args.rf))
        return EXIT_OK
    return draw(m, out, args)


def _check_limits(*a) -> None:
    from .model import check_limits

    check_limits(*a)


def _fail(message: str, details=()) -> int:
    """A problem with the user's weights or input array (not a usage error): exit 1."""
    print(f"cnndsl: error: {message}", file=sys.stderr)
    for d in details:
        print(f"  {d}", file=sys.stderr)
    return EXIT_SPEC


def _export(args, m):
    """The ONNX model of `m` with the weights the options ask for, or None after reporting a bad weights file."""
    import os

    from .backends import onnx as ob

    if args.weights:
        from .safeio import check_readable

        check_readable(args.weights, "weights archive")  # a FileProblem is a usage error
    weights = args.weights and _foreign_weights(args, m)
    if weights is False:
        return None
    try:
        ex = ob.to_onnx(m, seed=args.seed, init="zeros" if args.no_weights else "he", weights=weights or args.weights,
                        weights_label=os.path.basename(args.weights) if weights else None)
        for w in ex.warnings:
            print(f"cnndsl: warning: `{args.weights}`: {w}", file=sys.stderr)
        return ex
    except ob.WeightsError as e:
        _fail(f"{e}; nothing written", e.problems)
        return None
    except OSError as e:
        raise UsageError(f"cannot read `{args.weights}`: {e.strerror or e}") from None


def _read_weight_file(path: str, limit: int):
    """The WeightFile at `path`, or None after reporting why it cannot be read (exit 1)."""
    from . import weightfiles as wfs

    try:
        return wfs.read(path, limit)
    except wfs.WeightFileError as e:
        _fail(str(e), [f"help: {e.hint}"] if e.hint else [])
        return None
    except OSError as e:
        raise UsageError(f"cannot read `{path}`: {e.strerror or e}") from None


def _map_weights(m, wf):
    """The Mapping of `wf` onto `m`'s weights, or None after reporting every disagreement (exit 1)."""
    from . import weightfiles as wfs
    from .backends.onnx import expected_weights

    try:
        return wfs.match([(e.name, e.weight.shape) for e in expected_weights(m) if e.weight.fixed is None], wf)
    except wfs.MappingError as e:
        _fail(f"{e}; nothing written", e.problems + ([f"help: {e.hint}"] if e.hint else []))
        return None


def _foreign_weights(args, m):
    """For --weights in another format than cnndsl's .npz: the path of a temporary .npz of the mapped tensors
    (None for cnndsl's own .npz, False after reporting a problem)."""
    import os
    import tempfile

    from . import weightfiles as wfs

    try:
        kind = wfs.sniff(args.weights)
    except OSError as e:
        raise UsageError(f"cannot read `{args.weights}`: {e.strerror or e}") from None
    if kind == "npz":
        from .backends.onnx import WeightsError, check_weights_file, expected_weights

        try:
            check_weights_file(m, args.weights)
            return None  # cnndsl's own names: read as they are
        except (WeightsError, OSError):
            names = {e.name for e in expected_weights(m)}
            try:
                wf = wfs.read_npz(args.weights, args.max_memory)
            except wfs.WeightFileError:
                return None  # reported with the name check's problems
            if sum(t.name in names for t in wf.tensors) * 2 >= len(wf.tensors):
                return None  # mostly cnndsl's names: the name check's problems say what is wrong
    wf = wf if kind == "npz" else _read_weight_file(args.weights, args.max_memory)
    mapping = wf and _map_weights(m, wf)
    if not mapping:
        if wf:
            print(f"  `{args.weights}` is a {wf.format}; `cnndsl weights {args.file} --from {args.weights}` shows how "
                  "its tensors line up with the spec's weights", file=sys.stderr)
        return False
    args.weights_tmp = tempfile.TemporaryDirectory(prefix="cnndsl-weights-")  # lives as long as the command
    path = os.path.join(args.weights_tmp.name, os.path.basename(args.weights) + ".npz")
    try:
        wfs.save_npz(mapping.pairs, path)
    except wfs.WeightFileError as e:
        _fail(f"`{args.weights}`: {e}; nothing written")
        return False
    print(f"weights: {wf.format} `{args.weights}`, {len(mapping.pairs)} tensors mapped {mapping.how}"
          + (f", {len(wf.dropped)} `num_batches_tracked` left out" if wf.dropped else ""), file=sys.stderr)
    return path


def _writable(out: str, inputs=()):
    """The checked output (cnndsl.safeio.Target): never an input, a folder, or a device it would replace."""
    from .safeio import FileProblem, output_target

    try:
        return output_target(out, [i for i in inputs if i])
    except FileProblem as e:
        raise UsageError(str(e)) from None


@subcommand("compile", "export an ONNX model (NCHW, float32) that onnxruntime runs", _compile_args, many=True)
def cmd_compile(args) -> int:
    from pathlib import Path

    if args.to == "pytorch":
        return _compile_pytorch(args)
    if args.file == STDIN and not args.output:
        raise UsageError("a spec read from standard input needs `-o OUT.onnx`")
    out = args.output or str(Path(args.file).with_suffix(".onnx"))
    out = _writable(out, [args.file, args.weights])
    if args.svg:
        args.svg = _check_output(args.svg, args, [args.file, args.weights, out.path])
    m = _load(args)
    _print_warnings(m, args.format)
    _check_limits(m, args.max_params, args.max_memory)
    from .backends import onnx as ob

    ex = _export(args, m)
    if ex is None:
        return EXIT_SPEC
    nodes = len(ex.skeleton.graph.node)
    try:
        done = ob.save(ex, out, external=True if args.external_data else None)
    except OSError as e:
        raise UsageError(f"cannot write `{out}`: {e.strerror or e}") from None
    t = m.totals
    dims = lambda shape: fmt_shape(ob._nchw(shape), " x ")  # noqa: E731
    print(f"wrote {done.path} ({_kb(done.size)}" + (f", weights in {done.data_path.name} ({_kb(done.data_size)})"
                                                     if done.data_path else "") + f"; ONNX opset {ob.OPSET})")
    print(f"  {m.name}: {len(m.layers)} layers as {nodes} ONNX nodes; `input` {dims(m.input_shape)} -> "
          + ", ".join(f"`{o}` {dims(m.layer_graph.nodes[o]['shape'])}" for o in m.outputs))
    print(f"  {t.params:,} parameters ({_kb(ex.weight_bytes)} float32), {t.macs:,} MACs; weights: {ex.how}")
    return draw(m, args.svg, args) if args.svg else EXIT_OK


def _compile_pytorch(args) -> int:
    from pathlib import Path

    from .backends import pytorch

    out = args.output or str(Path(args.file).with_suffix(".py"))
    if not out.endswith(".py"):
        raise UsageError(f"`--to pytorch` writes a Python file: give `-o` a name ending in .py, not `{out}`")
    if args.weights or args.no_weights or args.external_data:
        raise UsageError("--weights, --no-weights and --external-data apply to ONNX; the PyTorch module loads an .npz "
                         "with load_state_dict (see the generated file's docstring)")
    target = _writable(out, [args.file])
    if args.svg:
        args.svg = _check_output(args.svg, [args.file, target.path])
    m = _load(args)
    _print_warnings(m, args.format)
    try:
        text = pytorch.to_pytorch(m)
    except pytorch.EmitError as e:
        return _fail(str(e))
    from .safeio import write_bytes

    try:
        write_bytes(target, text.encode("utf-8"))
    except OSError as e:
        raise UsageError(f"cannot write `{out}`: {e.strerror or e}") from None
    t = m.totals
    classes = text.count("\nclass ")
    print(f"wrote {out} ({len(text.splitlines())} lines, {classes} classes; imports torch only)")
    print(f"  {m.name}: {len(m.layers)} layers, {t.params:,} parameters ({t.trainable_params:,} trainable); "
          f"`from {Path(out).stem} import Model`; its state_dict keys are `cnndsl weights`'s names")
    return draw(m, args.svg, args) if args.svg else EXIT_OK


def _open_model(path: str, args, batch: int, open_session):
    """(onnxruntime session, Model or None) for a .cnn spec, exported in memory, or an .onnx model.

    `open_session` takes model bytes or a file name. Returns None after reporting a problem (exit 1).
    """
    from pathlib import Path

    from .backends import onnx as ob

    if Path(path).suffix.lower() == ".onnx":
        if args.weights or args.no_weights:
            raise UsageError("--weights and --no-weights apply to a .cnn spec; an .onnx model has its weights")
        if getattr(args, "shape", None):
            raise UsageError("--shape applies to a .cnn spec; an .onnx model's input shape is fixed in the file")
        from . import foreign

        try:  # what the file declares, before onnxruntime allocates it
            args.feed = foreign.inspect(path, batch, args.max_memory)
        except foreign.ForeignError as e:
            _fail(str(e))
            return None
        try:
            return open_session(path), None
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
            last = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            _fail(f"onnxruntime cannot load `{path}`: {last}")
            return None
    m = _load(args, path)
    _print_warnings(m, args.format)
    _check_limits(m, args.max_params, args.max_memory, batch)
    ex = _export(args, m)
    if ex is None:
        return None
    if ex.weight_bytes < ob.PROTOBUF_LIMIT - (64 << 20):
        return open_session(ex.to_bytes()), m
    import tempfile  # too big for one message: onnxruntime reads it from files

    from . import safeio

    with safeio.temp_dir(tempfile.gettempdir()) as d:
        ob.save(ex, Path(d) / "model.onnx", external=True, check=False)
        return open_session(str(Path(d) / "model.onnx")), m


@subcommand("run", "run a spec or an .onnx model in onnxruntime: output values, top-k, latency", _run_args,
            description="Run a .cnn spec (exported in memory) or an .onnx model in onnxruntime, and print the "
                        "output shape and values (the top classes of a classifier) and the latency.")
def cmd_run(args) -> int:
    import os

    import onnxruntime as ort

    from . import archives, foreign, safeio
    from .backends import runtime

    if args.file != STDIN:
        safeio.check_readable(args.file, "spec or ONNX model")

    batch = args.batch
    if args.array:  # the array's real batch counts against --max-memory, before anything is loaded
        if not os.path.exists(args.array) and _looks_like_shape(args.array):
            raise UsageError(f"cannot read `{args.array}`: no such file; `--input` is an array in `run`, the "
                             f"input shape is `--shape`")
        try:
            shape, _ = archives.npy_header(args.array, args.max_memory)
        except archives.ArchiveError as e:  # not an array, or more than the limit: a usage problem, exit 2
            raise UsageError(str(e)) from None
        batch = shape[0] if len(shape) in (2, 4) else 1
    args.feed = None
    opened = _open_model(args.file, args, batch,
                         lambda src: ort.InferenceSession(src, providers=["CPUExecutionProvider"]))
    if opened is None:
        return EXIT_SPEC
    session, _ = opened
    inp = session.get_inputs()[0]
    if args.array:
        try:
            x = archives.load_npy(args.array, args.max_memory)
            x, how = runtime.fit_input(x, list(inp.shape))
        except (archives.ArchiveError, runtime.InputError) as e:
            raise UsageError(f"`{args.array}`: {e}" if isinstance(e, runtime.InputError) else str(e)) from None
        how = f"`{args.array}`, read as {how}"
        if args.feed is not None:
            x = x.astype(args.feed.dtype, copy=False)
    elif args.feed is not None:
        x = foreign.random_feed(args.feed, args.batch, args.seed)
        how = f"random values, seed {args.seed}"
    else:
        x = runtime.random_input(list(inp.shape), args.batch, args.seed)
        how = f"random normal values, seed {args.seed}"
    try:
        with safeio.deadline(args.timeout, f"running `{args.file}`"):
            outs, timing = runtime.run(session, {inp.name: x}, args.repeat)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors when a model fails
        return _fail(f"onnxruntime failed while running `{args.file}`: {foreign._short(e)}")
    layout = {4: " (N x C x H x W)", 2: " (N x F)"}.get(x.ndim, "")
    name = "<stdin>" if args.file == STDIN else args.file
    print(f"{name}: input `{inp.name}` {fmt_shape(x.shape, ' x ') or 'scalar'}{layout}: {how}")
    for o, y in zip(session.get_outputs(), outs, strict=True):
        print("\n".join(runtime.describe_output(o.name, y, args.top)))
    if timing.runs:
        print(f"latency: {timing.median_ms:.3g} ms, median of {timing.runs} runs (batch {x.shape[0] if x.ndim else 1}, "
              f"onnxruntime {ort.__version__}, CPU)")
    return EXIT_OK


def _looks_like_shape(text: str) -> bool:
    return all(p.strip().isdigit() for p in text.lower().split("x"))


@subcommand("weights", "list the weight tensors a spec expects (names, shapes); -o writes a template",
            _weights_args)
def cmd_weights(args) -> int:
    from .backends import onnx as ob

    if args.output:
        args.output = _writable(args.output, [args.file, args.source])
    m = _load(args)
    _print_warnings(m, args.format)
    if args.source:
        return _weights_from(args, m)
    if args.output:  # the template holds every weight
        _check_limits(m, args.max_params, args.max_memory)
    rows = ob.expected_weights(m)
    table = [(e.name, fmt_shape(e.weight.shape), e.weight.init.describe(), "yes" if e.weight.trainable else "no")
             for e in rows]
    head = ("name", "shape (ONNX layout)", "default value", "trainable")
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(4)]
    for r in [head, *table]:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip())
    total = sum(e.weight.size for e in rows)
    fixed = sum(e.weight.fixed is not None for e in rows)
    print(f"{len(rows)} arrays, {total:,} numbers ({_kb(4 * total)} float32)"
          + (f"; {fixed} fixed by the spec, not read from a weights file" if fixed else ""))
    if args.output:
        try:
            n = ob.save_weights(m, args.output, args.seed)
        except OSError as e:
            raise UsageError(f"cannot write `{args.output.path}`: {e.strerror or e}") from None
        print(f"wrote {args.output.path}: {n} arrays (He uniform from seed {args.seed}); replace them with trained "
              f"values and pass it to `cnndsl compile --weights`")
    return EXIT_OK


def _weights_from(args, m) -> int:
    """`cnndsl weights SPEC --from FILE [-o W.npz]`: the mapping of the file's tensors onto the spec's weights."""

    from . import weightfiles as wfs
    from .safeio import check_readable
    from .util import fmt_shape

    check_readable(args.source, "weights file")  # a FileProblem is a usage error
    wf = _read_weight_file(args.source, args.max_memory)
    mapping = wf and _map_weights(m, wf)
    if not mapping:
        return EXIT_SPEC
    rows = [(str(i + 1), name, fmt_shape(t.shape), t.name if t.name != name else "(same name)", t.dtype)
            for i, (name, t) in enumerate(mapping.pairs)]
    head = ("#", "spec weight", "shape", f"<- {wf.format} tensor", "dtype")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    for r in [head, *rows]:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip())
    total = sum(prod(t.shape) for _, t in mapping.pairs)
    print(f"{len(rows)} tensors mapped {mapping.how}, {total:,} numbers"
          + (f"; left out {len(wf.dropped)} `num_batches_tracked` (a counter, not a weight)" if wf.dropped else ""))
    if args.output:
        _check_limits(m, args.max_params, args.max_memory)
        try:
            wfs.save_npz(mapping.pairs, str(args.output.path))
        except wfs.WeightFileError as e:
            return _fail(f"`{args.source}`: {e}; nothing written")
        except OSError as e:
            raise UsageError(f"cannot write `{args.output.path}`: {e.strerror or e}") from None
        print(f"wrote {args.output.path}: {len(rows)} arrays (float32, cnndsl's names); `cnndsl compile {args.file} "
              f"--weights {args.output.path}` exports the model with them")
    return EXIT_OK


def _bench_session(path: str, args, providers: list[str]):
    """(session, ModelResult without results) for a spec or an .onnx file; None after reporting a problem."""
    import os
    from pathlib import Path

    from . import bench

    args.file = path  # diagnostics name the file
    opened = _open_model(path, args, max(args.batch), lambda src: bench.session(src, providers, args.threads))
    if opened is None:
        return None
    sess, m = opened
    dims = [d if isinstance(d, int) else "N" for d in sess.get_inputs()[0].shape]
    if m is not None:
        return sess, bench.ModelResult(file=os.path.basename(path), name=m.name, params=m.totals.params,
                                       macs=m.totals.macs, input=dims)
    import onnx

    proto = onnx.load(path, load_external_data=False)  # onnxruntime loaded it, so onnx can read its graph
    params = sum(prod(t.dims) for t in proto.graph.initializer)
    return sess, bench.ModelResult(file=os.path.basename(path), name=proto.graph.name or Path(path).stem,
                                   params=params if proto.graph.initializer else None, macs=None, input=dims)


@subcommand("bench", "onnxruntime latency and throughput of specs or .onnx models across batch sizes", _bench_args,
            description="Time specs (exported in memory) or .onnx models in onnxruntime: for each batch size, "
                        "warm-up runs, then timed runs; prints the median and 90th percentile latency and the "
                        "throughput, several models side by side with their parameters and MACs.")
def cmd_bench(args) -> int:
    import os

    from . import bench

    if args.runs < 1 or args.warmup < 0 or args.threads < 0:
        raise UsageError("--runs must be at least 1, --warmup and --threads at least 0")
    from .safeio import check_readable

    for f in args.files:
        check_readable(f, "spec or ONNX model")
    try:
        providers = bench.provider_names(args.providers)
    except bench.BenchError as e:
        raise UsageError(str(e)) from None
    tty = sys.stderr.isatty()

    def show(text: str, final: bool = False) -> None:
        if tty:  # one line that updates in place
            sys.stderr.write("\r\x1b[K" + ("" if final else text))
        elif not final:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    from . import foreign, safeio

    models = []
    for path in args.files:
        args.feed = None
        loaded = _bench_session(path, args, providers)
        if loaded is None:
            return EXIT_SPEC
        sess, result = loaded
        for b in args.batch:
            fixed = bench.fixed_batch(result.input)
            if fixed is not None and fixed != b:
                result.skipped[b] = f"the model takes batch {fixed} only"
                continue
            label = f"bench: {result.file}, batch {b}"
            show(label + " ...")
            progress = (lambda i, n, label=label: show(f"{label}: run {i}/{n}")) if tty else None
            try:
                with safeio.deadline(args.timeout, "the benchmark"):
                    result.results.append(bench.measure(sess, b, args.warmup, args.runs, args.seed, progress))
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors when a model fails
                show("", final=True)
                return _fail(f"onnxruntime failed while running `{path}` at batch {b}: {foreign._short(e)}")
        models.append(result)
    show("", final=True)
    import onnxruntime as ort

    threads = (f"{args.threads} intra-op threads" if args.threads
               else f"onnxruntime's default threads ({os.cpu_count()} cores)")
    if args.json:
        print(bench.to_json(models, dict(onnxruntime=ort.__version__, providers=providers, threads=args.threads,
                                         warmup=args.warmup, runs=args.runs, batches=args.batch, seed=args.seed)))
    else:
        print(bench.table(models, args.batch, f"onnxruntime {ort.__version__}, {', '.join(providers)}, {threads}; "
                                              f"{args.warmup} warm-up + {args.runs} timed runs per batch size, "
                                              f"random normal input (seed {args.seed})"))
    return EXIT_OK


@subcommand("import", "write an ONNX CNN as a readable spec (.cnn) and its weights (.npz)", _import_args,
            description="Import an ONNX CNN (torch.onnx.export, tf2onnx, ...): conv/bn/act patterns, residuals, "
                        "branches and repeated blocks become a spec; its weights go to an .npz that `cnndsl compile "
                        "--weights` takes. Nothing is written unless the spec computes what the model computes.")
def cmd_import(args) -> int:
    import os
    from pathlib import Path

    from . import onnx_import as oi
    from .backends.dot import write_atomic

    src = Path(args.file)
    if not src.is_file():
        raise UsageError(f"cannot read `{args.file}`: " + ("not a regular file" if src.exists() else "no such file"))
    if src.stat().st_size > oi.MAX_ONNX_BYTES:
        raise UsageError(f"`{args.file}` is larger than {oi.MAX_ONNX_BYTES >> 30} GB")
    out = Path(args.output or src.with_suffix(".cnn"))
    wout = Path(args.weights_out or out.with_suffix(".npz"))
    for o in (out, wout):
        if o.exists() and os.path.samefile(o, src):
            raise UsageError(f"`{o}` is the model being imported; choose another output with -o/--weights-out")
    out, wout = (_writable(str(o), [str(src)]) for o in (out, wout))
    from . import foreign, safeio
    from .model import MAX_MEMORY

    try:  # what the file declares, before onnx and onnxruntime allocate it (issue #15's bounds)
        foreign.check_declared(str(src), 2, MAX_MEMORY)
    except foreign.ForeignError as e:
        return _fail(f"{e}; nothing was written")
    try:
        with safeio.deadline(600, f"importing `{args.file}`"):
            proto = oi.load(str(src), args.input_shape)
            spec = oi.import_model(proto, args.name or src.stem)
            imp = oi.bind_weights(spec, str(out.path))
            err = None if args.no_verify else oi.verify(imp, str(src))
    except oi.ImportFailure as e:
        print(f"cnndsl: error: {args.file}: {e}", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        if e.hint:
            print(f"  help: {e.hint}", file=sys.stderr)
        print("nothing was written", file=sys.stderr)
        return EXIT_SPEC
    if err is not None and err > oi.TOLERANCE:
        print(f"cnndsl: error: {args.file}: the imported spec's outputs differ from the model's by {err:.2e} "
              f"(relative), more than {oi.TOLERANCE:g}; nothing was written (a bug in `cnndsl import`: please "
              "report it with the model)", file=sys.stderr)
        return EXIT_SPEC
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **imp.weights)
    write_atomic(wout, buf.getvalue())
    write_atomic(out, spec.text.encode())
    t = imp.model.totals
    lines = spec.text.count("\n")
    print(f"wrote {out.path}: {lines} lines, {len(imp.model.layers)} layers, {t.params:,} parameters, {t.macs:,} MACs")
    print(f"wrote {wout.path}: {len(imp.weights)} arrays, {imp.params_onnx:,} numbers from the model's initializers")
    for note in spec.notes:
        print(f"note: {note}")
    if err is not None:
        print(f"onnxruntime agrees: the largest relative difference of the outputs is {err:.1e}")
    print(f"next: cnndsl compile {out.path} --weights {wout.path}")
    return EXIT_OK


@subcommand("completion", "print a shell completion script: bash, zsh or fish", _completion_args,
            description="Print a completion script for the shell, generated from cnndsl's own options: "
                        "`cnndsl completion bash > ~/.local/share/bash-completion/completions/cnndsl`, "
                        "`cnndsl completion zsh > ~/.zfunc/_cnndsl`, "
                        "`cnndsl completion fish > ~/.config/fish/completions/cnndsl.fish`.")
def cmd_completion(args) -> int:
    from .completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return EXIT_OK


# --- live feedback while writing a spec (cnndsl.fmt, cnndsl.lsp, cnndsl.serve) ---------------------


def _fmt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE", help="a .cnn spec or a folder of them; `-` reads stdin")
    p.add_argument("--check", action="store_true", help="write nothing; list the files it would change, exit 1 if any")
    p.add_argument("--annotate", action="store_true",
                   help="write ` : HxWxC` after each top-level statement and refresh every annotation")


@subcommand("fmt", "lay specs out canonically (comments kept); --annotate writes checked shapes", _fmt_args)
def cmd_fmt(args) -> int:
    from pathlib import Path

    from .backends.dot import write_atomic
    from .diagnostics import CompileError, render
    from .fmt import annotate_text, format_text
    from .model import read_source

    if args.paths == ["-"]:
        text = sys.stdin.read()
        out = annotate_text(text, "<stdin>") if args.annotate else format_text(text, "<stdin>")
        if not args.check:
            sys.stdout.write(out)
        return EXIT_SPEC if args.check and out != text else EXIT_OK
    paths = []
    for f in args.paths:
        p = Path(f)
        if p.is_dir():
            paths += sorted(p.rglob("*.cnn"))
        elif p.is_file():
            paths.append(p)
        else:
            raise UsageError(f"cannot read `{f}`: no such file or folder")
    changed, failed = [], 0
    for p in paths:
        try:
            text = read_source(p)
            out = annotate_text(text, str(p)) if args.annotate else format_text(text, str(p))
        except CompileError as e:
            failed += 1
            for d in e.diagnostics:
                print(render(d, e.sources, "full" if args.format == "json" else args.format), file=sys.stderr)
            continue
        except OSError as e:
            raise UsageError(f"cannot read `{p}`: {e.strerror or e}") from None
        if out != text:
            changed.append(p)
            if not args.check:
                write_atomic(p, out.encode("utf-8"))
            print(f"{'would reformat' if args.check else 'reformatted'} {p}")
    n = len(paths)
    print(f"{len(changed)} of {n} file{'s' if n != 1 else ''} {'would be ' if args.check else ''}reformatted"
          + (f", {failed} with errors" if failed else ""), file=sys.stderr)
    return EXIT_SPEC if failed or (args.check and changed) else EXIT_OK


@subcommand("lsp", "the language server, over stdin/stdout (for editors)")
def cmd_lsp(args) -> int:
    import os

    from .lsp import serve_stdio

    try:
        serve_stdio()
    except ImportError as e:
        raise UsageError(f"the language server needs the `lsp` extra (pip install 'cnndsl[lsp]'): {e}") from None
    if sys.stdout.closed:  # the server closes its channel on `exit`; nothing is left to flush
        sys.stdout = open(os.devnull, "w")
    return EXIT_OK


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="the .cnn spec to edit (saved only when you press Save)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")


@subcommand("serve", "a playground page: edit a spec, see its diagnostics, diagram and table", _serve_args)
def cmd_serve(args) -> int:
    from pathlib import Path

    from .serve import run

    if args.file and Path(args.file).exists() and not Path(args.file).is_file():
        raise UsageError(f"cannot edit `{args.file}`: not a regular file")
    try:
        return run(args.file, args.host, args.port, log=lambda m: print(m, file=sys.stderr, flush=True))
    except OSError as e:  # the port is taken, the address is not this machine's, the file is unreadable
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None


def _report(e, args) -> None:  # e: a cnndsl.diagnostics.CompileError
    """Print a spec's diagnostics: on stderr as text, or kept for the one JSON list on stdout."""
    if args.format == "json":
        args.diagnostics.extend(e.diagnostics)
        return
    from .diagnostics import render
    from .term import paint, wants_color

    color = wants_color(sys.stderr, args.color)
    for d in e.diagnostics[:MAX_SHOWN_DIAGNOSTICS]:
        text = render(d, e.sources, args.format)
        print(paint(text) if color else text, file=sys.stderr)
    if len(e.diagnostics) > MAX_SHOWN_DIAGNOSTICS:
        print(f"... and {len(e.diagnostics) - MAX_SHOWN_DIAGNOSTICS:,} more (`--format json` lists them all)",
              file=sys.stderr)
    n = sum(d.severity == "error" for d in e.diagnostics)
    file = getattr(args, "file", None) or "the spec"
    print(f"{n} error{'s' if n != 1 else ''} in {'<stdin>' if file == STDIN else file}", file=sys.stderr)


def _run_one(cmd: Command, args) -> int:
    from .diagnostics import CompileError
    from .safeio import FileProblem

    try:
        return cmd.handler(args)
    except CompileError as e:
        _report(e, args)
        return EXIT_SPEC
    except (UsageError, FileProblem) as e:
        print(f"cnndsl: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    if argv is not None:  # called from Python (the tests): no signal handlers, stdout left to the caller
        return _main(argv)
    from . import safeio

    _PROCESS["command_line"] = True
    safeio.install_signal_handlers()  # SIGTERM/SIGHUP: kill children, remove temporaries, exit 128+N
    try:
        code = _main(None)
    finally:
        safeio.cleanup()
    try:
        sys.stdout.flush()
    except OSError as e:  # e.g. `> /dev/full`
        return _stdout_failed(e) if code == EXIT_OK else code
    return code


def _main(argv: list[str] | None) -> int:
    from . import safeio

    try:
        return _command(argv)
    finally:
        for n in safeio.notices:
            print(f"cnndsl: note: {n}", file=sys.stderr)
        safeio.notices.clear()


def _command(argv: list[str] | None) -> int:
    from .term import make_safe

    make_safe()  # `×` and `‖` become `x` and `||` on an ASCII-only stdout instead of a crash
    ap = build_parser(_named_command(argv))
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 for --help
        return int(e.code or 0)
    cmd = COMMANDS[args.command]
    args.diagnostics = []  # with --format json: every file's, printed as one list on stdout
    args.documents = []  # `summary --json`: one document per file, printed together at the end
    try:
        files = list(getattr(args, "files", None) or [None]) if cmd.many else [None]
        if len(files) > 1 and (getattr(args, "output", None) or getattr(args, "svg", None)):
            raise UsageError(f"-o/--output and --svg name one file: give one spec, not {len(files)}")
        if files.count(STDIN) > 1:
            raise UsageError("standard input (`-`) can be read once")
        code = EXIT_OK
        for f in files:
            if f is not None:
                args.file = f
            code = max(code, _run_one(cmd, args))
        if args.documents:
            import json

            print(json.dumps(args.documents[0] if len(files) == 1 else args.documents, indent=2))
        if args.format == "json" and (args.diagnostics or cmd.name == "check"):
            from .diagnostics import dumps

            print(dumps(args.diagnostics))
        return code
    except UsageError as e:
        print(f"cnndsl: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except MemoryError:
        print("cnndsl: error: out of memory; the network or the input is too large for this machine (see "
              "--max-memory and --max-layers)", file=sys.stderr)
        return EXIT_SPEC
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            return _internal()
        return _stdout_failed(e)  # outputs report their own write errors: this is standard output
    except Exception:  # noqa: BLE001 - anything else is a bug in cnndsl, shown as one
        return _internal()


def _internal() -> int:
    print("cnndsl: internal error: this is a bug in cnndsl, not in your spec; please report it with the "
          "spec and this traceback:", file=sys.stderr)
    traceback.print_exc()
    return EXIT_INTERNAL


def _stdout_failed(e: OSError) -> int:
    """Standard output cannot take more (`> /dev/full`): say so once, and keep Python from saying it again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured by a caller)
        pass
    print(f"cnndsl: error: cannot write to standard output: {e.strerror or e}", file=sys.stderr)
    return EXIT_USAGE
