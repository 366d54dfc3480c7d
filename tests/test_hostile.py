"""The hostile corpus: one case for each way a deliberate attack once broke cnndsl (issue #15), through
every input a user controls: specs, imported files, `.npz` weights, `.npy` inputs, `.onnx` models,
option values, output paths and signals.

Each case asserts the exit code (0, 1 or 2: never 3, a traceback), the message a user acts on, and that
nothing in the folder was overwritten or left behind. Cases that need a real process (signals, FIFOs,
stdout, memory limits, time bounds) run one; the rest call cnndsl.cli.main in process, bounded in time.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT, SPECS
from onnx import TensorProto, helper

from cnndsl import cli

LENET = (SPECS / "lenet5.cnn").read_text()
SMALL = "input 8x8x3\nconv f=3 n=4 -> relu -> fc 10\n"


@dataclass
class R:
    code: int
    out: str
    err: str


def main(*argv, timeout: float = 60) -> R:
    """cnndsl in process, bounded in time (SIGALRM), with its output captured."""
    out, err = io.StringIO(), io.StringIO()

    def fire(signum, frame):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
    except TimeoutError:
        pytest.fail(f"`cnndsl {' '.join(map(str, argv))}` took more than {timeout} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return R(code, out.getvalue(), err.getvalue())


def proc(*argv, timeout: float = 120, cwd=None, mem: int | None = None, **kw) -> subprocess.CompletedProcess:
    """cnndsl in a real process (optionally with its address space capped at `mem` bytes)."""
    pre = (lambda: resource.setrlimit(resource.RLIMIT_AS, (mem, mem))) if mem else None
    return subprocess.run([sys.executable, "-m", "cnndsl", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, preexec_fn=pre, **kw)


def handled(code: int, err: str, want: int, *messages: str) -> None:
    assert code == want, (code, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    for m in messages:
        assert m in err, (m, err[-2000:])


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry of a folder: file bytes, or what it is (a link, a FIFO, a folder)."""
    out = {}
    for p in sorted(folder.iterdir()):
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[p.name] = f"link -> {os.readlink(p)}"
        elif stat.S_ISREG(st.st_mode):
            out[p.name] = p.read_bytes() if st.st_size < 1 << 20 else f"{st.st_size} bytes"
        else:
            out[p.name] = stat.filemode(st.st_mode)
    return out


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


# --- specs: expansion that builds no layers --------------------------------------------------------------

EXPANSION = {
    "huge_empty_repeat": "input 8x8x3\nrepeat 1000000000 { }\nrelu\n",
    "nested_empty_repeats": "input 8x8x3\nrepeat 100000 { repeat 100000 { } }\nrelu\n",
    "nested_failing_repeats": "input 8x8x3\nrepeat 100000 { repeat 100000 { bogus } }\nrelu\n",
    "value_name_body": "input 8x8x3\nx = relu\nrepeat 1000000000 { x }\n",
    "defaults_only_body": "input 8x8x3\nrepeat 1000000000 { defaults conv n=1 }\nrelu\n",
    "doubled_empty_block": "block b0 { }\n" + "".join(f"block b{i} {{ b{i - 1} -> b{i - 1} }}\n" for i in range(1, 31))
                           + "input 8x8x3\nb30\nrelu\n",
    "doubled_failing_block": "block b0 { nope }\n" + "".join(f"block b{i} {{ b{i - 1} -> b{i - 1} }}\n"
                                                              for i in range(1, 31)) + "input 8x8x3\nb30\n",
}


@pytest.mark.parametrize("name", sorted(EXPANSION))
def test_expansion_is_bounded_by_the_work_it_does(name, folder):
    p = folder / "spec.cnn"
    p.write_text(EXPANSION[name])
    before = snapshot(folder)
    # --max-layers scales the budget (16 steps a layer): the default's bound is timed in benchmarks/RESULTS.md
    r = main("--format", "json", "check", "--max-layers", "2000", p, timeout=30)
    handled(r.code, r.err, 1)
    codes = {d["code"] for d in json.loads(r.out)}
    assert codes & {"too-large", "too-many-errors"}, codes
    assert snapshot(folder) == before


def test_the_default_expansion_budget_ends_a_billion_empty_repeats_in_a_process(folder):
    p = folder / "spec.cnn"
    p.write_text(EXPANSION["huge_empty_repeat"])
    r = proc("check", p, timeout=120, mem=2 << 30)
    handled(r.returncode, r.stderr, 1, "error[too-large]: the spec takes more than 4,010,000 expansion steps")


def test_errors_are_capped_and_render_in_linear_time(folder):
    p = folder / "spec.cnn"
    p.write_text("input 8x8x3\n" + "bogus\n" * 12_000 + "relu\n")
    r = main("check", p, timeout=60)
    # the build stops after 10,000 errors (the last says so); the text form shows the first 200
    handled(r.code, r.err, 1, "... and 9,802 more (`--format json` lists them all)", "10002 errors in")
    p.write_text("input 8x8x3\nrepeat 1000000 { bogus }\n")
    r = main("--format", "json", "check", "--max-layers", "1000000", p, timeout=60)  # errors inside one repeat
    handled(r.code, r.err, 1)
    diags = json.loads(r.out)
    assert len(diags) == 10_002 and [d["code"] for d in diags].count("too-many-errors") == 1


# --- specs: sizes, numbers, text -------------------------------------------------------------------------


def test_blank_lines_cost_little_memory(folder):
    p = folder / "spec.cnn"
    p.write_bytes(b"input 8x8x3\nconv f=3 n=2" + b"\n" * 5_000_000 + b"-> relu\n# " + b"#\n" * 500_000 + b"relu\n")
    r = proc("check", p, mem=2 << 30)  # 5 MB of blank lines took 4.8 GB
    handled(r.returncode, r.stderr, 0)
    assert "2 layers" in r.stdout or "3 layers" in r.stdout


def test_a_huge_sparse_file_is_refused_before_reading(folder):
    big = folder / "big.cnn"
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # 2 GB of holes: nothing on disk
    r = main("check", big)
    handled(r.code, r.err, 2, f"cannot read `{big}`: it is 2.0 GiB, more than a spec may be (16.0 MiB)")
    spec = folder / "spec.cnn"
    spec.write_text('import "big.cnn"\n' + SMALL)
    r = main("check", spec)
    handled(r.code, r.err, 1, "error[import-not-found]: cannot read `big.cnn`: it is 2.0 GiB")


NUMBERS = {
    "int_over_4300_digits": ("input 8x8x3\nfc " + "9" * 5000 + "\n", "number-too-large", "2:4"),
    "float_over_1e308": ("input 8x8x3\ndropout rate=1e400\n", "number-too-large", "2:14"),
    "size_over_18_digits": ("input 1234567890123456789x8x3\nrelu\n", "number-too-large", "1:7"),
    "upsample_past_10_30": ("input 999999999999999999x999999999999999999x3\nrepeat 3 { upsample 999999999999999999 }\n",
                            "too-large", "2:12"),
    "same_padding_on_huge_sizes": ("input 999999999999999999x999999999999999999x3\nupsample 999999999999999999 -> "
                                   "upsample 999999999999999999 -> conv f=3 s=7 n=2 p=same\n", "too-large", "2:1"),
}


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_numbers_are_bounded_where_they_are_read(name, folder):
    text, code, where = NUMBERS[name]
    p = folder / "spec.cnn"
    p.write_text(text)
    for cmd in ("check", "summary", "compile"):
        r = main("--format", "json", cmd, p)
        handled(r.code, r.err, 1)
        d = json.loads(r.out)[0]
        assert (d["code"], f"{d['span']['line']}:{d['span']['col']}") == (code, where), d
    assert sorted(os.listdir(folder)) == ["spec.cnn"]


def test_escape_sequences_never_reach_the_terminal(folder):
    p = folder / "spec.cnn"
    p.write_bytes(b'input 8x8x3\nconv f=3 n=2 -> bogus "\x1b]0;owned\x07\x1b[2J" # \x1b[31m\n')
    r = main("check", p)
    handled(r.code, r.err, 1, "unknown layer kind `bogus`", "\\x1b]0;owned\\x07\\x1b[2J")
    assert "\x1b" not in r.err and "\x07" not in r.err


@pytest.mark.parametrize("separator", ["\f", "\u2028", "\x1c", "\x85"])
def test_line_separators_do_not_shift_the_quoted_line(separator, folder):
    p = folder / "spec.cnn"
    p.write_text(f"input 8x8x3 # a{separator}b\nconv f=3 n=2\nbogus\n", encoding="utf-8")
    r = main("check", p)
    handled(r.code, r.err, 1, "spec.cnn:3:1: error[unknown-layer]", "3 | bogus")


def test_a_bom_is_accepted_in_an_imported_file_too(folder):
    (folder / "lib.cnn").write_bytes(b"\xef\xbb\xbfblock b(n) { conv f=1 n=n }\n")
    p = folder / "spec.cnn"
    p.write_bytes(b'\xef\xbb\xbfimport "lib.cnn"\ninput 8x8x3\nb(4)\n')
    r = main("check", p)
    handled(r.code, r.err, 0)


# --- the spec path ---------------------------------------------------------------------------------------


def _paths(folder: Path) -> dict[str, tuple[Path, str]]:
    loop = folder / "loop.cnn"
    loop.symlink_to(loop)
    fifo = folder / "fifo.cnn"
    os.mkfifo(fifo)
    (folder / "file").write_text("x")
    (folder / "dir.cnn").mkdir()
    return {
        "symlink_loop": (loop, "too many levels of symbolic links"),
        "name_too_long": (folder / ("x" * 300 + ".cnn"), "the name is too long"),
        "under_a_file": (folder / "file" / "spec.cnn", "a part of the path is not a folder"),
        "dev_zero": (Path("/dev/zero"), "it is a device, not a spec"),
        "fifo": (fifo, "it is a named pipe (FIFO), not a spec"),
        "folder": (folder / "dir.cnn", "it is a folder"),
        "missing": (folder / "missing.cnn", "no such file"),
    }


def test_unusable_spec_paths_are_one_line_usage_errors(folder):
    for name, (path, message) in _paths(folder).items():
        for cmd in (["check"], ["render", "-o", folder / "x.dot"], ["compile", "-o", folder / "x.onnx"]):
            r = main(*cmd, path, timeout=20)  # a FIFO would block forever if it were opened
            handled(r.code, r.err, 2, f"cannot read `{path}`: {message}")
            assert r.err.count("\n") == 1, (name, r.err)
    assert not (folder / "x.dot").exists() and not (folder / "x.onnx").exists()


# --- imports ---------------------------------------------------------------------------------------------


def test_imports_stay_inside_the_spec_folder_and_never_quote_other_files(tmp_path):
    secret = tmp_path / "secret.cnn"
    secret.write_text("TOKEN=hunter2 is a secret\n")
    (tmp_path / "secret.txt").write_text("TOKEN=hunter2\n")
    nets = tmp_path / "nets"
    nets.mkdir()
    (nets / "link.cnn").symlink_to(secret)
    (nets / "binary.cnn").write_bytes(b"TOKEN=hunter2\xff\xfe\n")
    cases = {
        '"/etc/passwd"': ("import-not-a-spec", "is not a .cnn file"),
        '"/proc/self/environ"': ("import-not-a-spec", "is not a .cnn file"),
        '"../secret.cnn"': ("import-outside", "is outside the folder of the spec"),
        f'"{secret}"': ("import-outside", "is outside the folder of the spec"),
        '"link.cnn"': ("import-outside", "is outside the folder of the spec"),
        '"../secret.txt"': ("import-not-a-spec", "is not a .cnn file"),
        '"binary.cnn"': ("bad-encoding", "is not UTF-8 text"),
    }
    for target, (code, message) in cases.items():
        spec = nets / "net.cnn"
        spec.write_text(f"import {target}\n" + SMALL)
        r = main("check", spec)
        handled(r.code, r.err, 1, f"error[{code}]", message)
        assert "hunter2" not in r.err and "root:" not in r.err, r.err
    spec.write_text('import "../secret.cnn"\n' + SMALL)
    r = main("check", "--allow-import", tmp_path, spec)  # widened on the command line: it is read (and fails)
    handled(r.code, r.err, 1, "secret.cnn:1:1: error[")
    (tmp_path / "lib.cnn").write_text("block b { relu }\n")
    spec.write_text('import "../lib.cnn"\n' + SMALL + "b\n")
    assert main("check", "--allow-import", tmp_path, spec).code == 0
    assert main("check", spec).code == 1


def test_a_fifo_import_does_not_block(folder):
    os.mkfifo(folder / "pipe.cnn")
    spec = folder / "spec.cnn"
    spec.write_text('import "pipe.cnn"\n' + SMALL)
    r = main("check", spec, timeout=20)
    handled(r.code, r.err, 1, "cannot read `pipe.cnn`: it is a named pipe (FIFO), not a spec")


# --- outputs ---------------------------------------------------------------------------------------------


def test_an_output_is_never_the_input(folder):
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    w = folder / "w.npz"
    assert main("weights", "-o", w, spec).code == 0
    named_onnx = folder / "net.onnx"  # a spec whose default output name is itself
    named_onnx.write_text(SMALL)
    named_svg = folder / "net.svg"
    named_svg.write_text(SMALL)
    before = snapshot(folder)
    for argv in (["compile", spec, "-o", spec], ["render", spec, "-o", spec], ["weights", spec, "-o", spec],
                 ["compile", named_onnx], ["render", named_svg], ["compile", spec, "--weights", w, "-o", w],
                 ["compile", spec, "-o", folder / "x.onnx", "--svg", spec],
                 ["compile", spec, "-o", folder / "." / "spec.cnn"]):
        r = main(*argv)
        handled(r.code, r.err, 2, "; cnndsl never writes over what it reads")
    assert snapshot(folder) == before


def test_device_outputs_are_written_through_and_links_are_kept(folder):
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    r = main("compile", spec, "-o", "/dev/null")
    handled(r.code, r.err, 0)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    r = main("render", spec, "-o", "/dev/null")  # no suffix: an SVG into the device
    handled(r.code, r.err, 0)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    real = folder / "real.onnx"
    real.write_bytes(b"old")
    link = folder / "link.onnx"
    link.symlink_to(real)
    r = main("compile", spec, "-o", link)
    handled(r.code, r.err, 0)
    assert link.is_symlink() and onnx.load(str(real)).graph.name == "spec"
    fifo = folder / "pipe.onnx"
    os.mkfifo(fifo)
    r = main("compile", spec, "-o", fifo, timeout=20)
    handled(r.code, r.err, 2, "it is a named pipe with no reader")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    loop = folder / "loop.onnx"
    loop.symlink_to(loop)
    r = main("compile", spec, "-o", loop)
    handled(r.code, r.err, 2, "too many levels of symbolic links")
    assert sorted(os.listdir(folder)) == ["link.onnx", "loop.onnx", "pipe.onnx", "real.onnx", "spec.cnn"]


def test_a_fifo_output_with_a_reader_gets_the_bytes(folder):
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    fifo = folder / "pipe.dot"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    time.sleep(0.3)
    r = main("render", spec, "-o", fifo, timeout=30)
    handled(r.code, r.err, 0)
    assert reader.communicate(timeout=30)[0].startswith(b"digraph")


# --- weights archives ------------------------------------------------------------------------------------


def _lenet(folder: Path) -> tuple[Path, dict[str, np.ndarray]]:
    spec = folder / "lenet5.cnn"
    spec.write_text(LENET)
    w = folder / "w.npz"
    assert main("weights", "-o", w, spec).code == 0
    with np.load(w) as z:
        arrays = {k: z[k] for k in z.files}
    return spec, arrays


def _zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array(b, arr, allow_pickle=True)
    return b.getvalue()


def _archive_cases(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, tuple[Path, str]]:
    good = {f"{k}.npy": _npy(v) for k, v in arrays.items()}
    first = next(iter(arrays))
    cases = {}

    def case(name, members, message, method=zipfile.ZIP_STORED):
        p = folder / f"{name}.npz"
        _zip(p, members, method)
        cases[name] = (p, message)

    # numpy answers to a bare name first: a bare-named member must be checked like the others
    case("bare_wrong_shape", {**{k: v for k, v in good.items() if k != f"{first}.npy"},
                              first: _npy(np.zeros((3, 3), np.float32))}, f"`{first}`: shape 3x3")
    case("bare_and_npy", {**good, first: _npy(arrays[first])}, f"`{first}` is in the archive twice")
    bomb = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    bomb["shape"] = (400_000_000,)  # 1.6 GB of zeros in a small deflated member
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, bomb)
    case("zip_bomb", {**{k: v for k, v in good.items() if k != f"{first}.npy"},
                      first: head.getvalue() + bytes(4 << 20)}, "the archive says", zipfile.ZIP_DEFLATED)
    case("pickled_member", {**good, "extra.npy": _npy(np.array([{"a": 1}], dtype=object))},
         "which cnndsl never loads (no pickles)")
    case("not_an_array", {**good, "notes.txt": b"hello"}, "`notes.txt`: not a NumPy array")
    # found by the archive fuzzer: numpy tokenizes the header, and an unbalanced `)` raised TokenError
    broken = good[f"{first}.npy"].replace(b"'shape': (", b"'shape': )", 1)
    case("broken_header", {**good, f"{first}.npy": broken}, f"`{first}.npy`: not a NumPy array")
    p = folder / "truncated.npz"
    full = folder / "full.npz"
    _zip(full, good)
    p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    cases["truncated"] = (p, "not a NumPy .npz archive")
    p = folder / "pickle.npz"
    p.write_bytes(b"\x80\x04\x95" + bytes(64))  # what np.load would hand to pickle
    cases["pickle_prefixed"] = (p, "not a NumPy .npz archive")
    p = folder / "corrupt.npz"
    _zip(p, good, zipfile.ZIP_DEFLATED)
    data = bytearray(p.read_bytes())
    data[200:260] = bytes(60)  # damage the first member's deflated data
    p.write_bytes(bytes(data))
    cases["corrupt_data"] = (p, f"`{first}.npy`")
    p = folder / "encrypted.npz"
    _zip(p, good)
    data = bytearray(p.read_bytes())
    data[6] |= 1  # the encrypted flag of the first local header ...
    cd = data.find(b"PK\x01\x02")
    data[cd + 8] |= 1  # ... and of its central directory entry
    p.write_bytes(bytes(data))
    cases["encrypted"] = (p, "encrypted; give an unencrypted archive")
    return cases


def test_every_archive_member_is_validated_before_anything_is_written(folder):
    spec, arrays = _lenet(folder)
    out = folder / "net.onnx"
    out.write_bytes(b"the previous model")
    cases = _archive_cases(folder, arrays)
    before = snapshot(folder)
    for name, (path, message) in cases.items():
        for argv in (["compile", spec, "--weights", path, "-o", out], ["run", spec, "--weights", path]):
            r = main(*argv)
            handled(r.code, r.err, 1, message)
            assert "does not match the network" in r.err or "not a NumPy .npz archive" in r.err, (name, r.err)
    assert snapshot(folder) == before


def test_nan_weights_are_warned(folder):
    spec, arrays = _lenet(folder)
    first = next(iter(arrays))
    arrays[first][0] = np.nan
    w = folder / "nan.npz"
    np.savez(w, **arrays)
    r = main("compile", spec, "--weights", w, "-o", folder / "net.onnx")
    handled(r.code, r.err, 0, f"warning: `{w}`: `{first}` holds NaN or infinite values")


# --- .npy inputs -----------------------------------------------------------------------------------------


def _sparse_npy(path: Path, shape) -> None:
    head = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    head["shape"] = tuple(shape)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, head)
        f.truncate(f.tell() + 4 * int(np.prod(shape)))


def test_the_input_array_counts_against_the_memory_limit_before_it_is_read(folder):
    spec = folder / "lenet5.cnn"
    spec.write_text(LENET)
    big = folder / "big.npy"
    _sparse_npy(big, (262_144, 1, 32, 32))  # 1 GiB of holes, as LeNet-5's batch
    r = main("--format", "json", "run", spec, "--input", big, "--max-memory", "100M")
    handled(r.code, r.err, 2)  # the array itself is refused: a usage problem
    assert "the array holds 1.0 GiB, more than the limit of 100.0 MiB" in r.err
    r = main("--format", "json", "run", spec, "--input", big, "--max-memory", "1100M")
    handled(r.code, r.err, 1)  # the array fits, the batch of activations it means does not
    assert "activations at batch 262144" in json.loads(r.out)[0]["message"]


def test_bad_input_arrays_are_messages(folder):
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    trunc = folder / "trunc.npy"
    np.save(trunc, np.zeros((8, 8, 3), np.float32))
    trunc.write_bytes(trunc.read_bytes()[:-10])
    obj = folder / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    npz = folder / "arr.npz"
    np.savez(npz, x=np.zeros(3))
    fifo = folder / "pipe.npy"
    os.mkfifo(fifo)
    before = snapshot(folder)
    # an unusable input array is a usage problem (exit 2), not an error in the spec (issue #16)
    for path, code, message in ((trunc, 2, "truncated"), (obj, 2, "never loads (no pickles)"),
                                (npz, 2, "it is an .npz archive; give one array as .npy"),
                                (fifo, 2, "it is a named pipe (FIFO)"), (folder, 2, "it is a folder")):
        r = main("run", spec, "--input", path, timeout=20)
        handled(r.code, r.err, code, message)
    assert snapshot(folder) == before


# --- foreign .onnx models --------------------------------------------------------------------------------


def _model(folder: Path, name: str, nodes, inputs, outputs, inits=()) -> Path:
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    p = folder / f"{name}.onnx"
    onnx.save(m, str(p))
    return p


def _vi(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def test_foreign_models_that_cannot_be_fed_are_refused(folder):
    F = TensorProto.FLOAT
    cases = {
        "no_inputs": (_model(folder, "no_inputs", [helper.make_node("Constant", [], ["y"], value_float=1.0)], [],
                             [_vi("y", F, [])]), "has no inputs"),
        "two_inputs": (_model(folder, "two_inputs", [helper.make_node("Add", ["a", "b"], ["y"])],
                              [_vi("a", F, [1]), _vi("b", F, [1])], [_vi("y", F, [1])]), "takes 2 inputs"),
        "symbolic": (_model(folder, "symbolic", [helper.make_node("Relu", ["x"], ["y"])], [_vi("x", F, ["N", "h"])],
                            [_vi("y", F, ["N", "h"])]), "dimension 1 of the input `x` is `h`"),
        "string": (_model(folder, "string", [helper.make_node("Identity", ["x"], ["y"])],
                          [_vi("x", TensorProto.STRING, [1])], [_vi("y", TensorProto.STRING, [1])]),
                   "holds STRING values"),
        "huge_constant": (_model(folder, "huge_constant", [
            helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [2],
                                                                                 [100000, 100000])),
            helper.make_node("ConstantOfShape", ["shape"], ["big"]),
            helper.make_node("Add", ["x", "big"], ["y"])], [_vi("x", F, [1])], [_vi("y", F, [100000, 100000])]),
            "more than the limit of"),
    }
    before = snapshot(folder)
    for path, message in cases.values():
        for cmd in ("run", "bench"):
            r = main(cmd, path, timeout=60)
            handled(r.code, r.err, 1, message)
    # `cnndsl import` checks what a model declares before onnx and onnxruntime allocate it, too
    r = main("import", cases["huge_constant"][0], timeout=60)
    handled(r.code, r.err, 1, "more than the limit of 16.0 GiB", "nothing was written")
    assert snapshot(folder) == before


def test_foreign_models_of_any_rank_and_type_run(folder):
    F = TensorProto.FLOAT
    for name, elem, dims in (("scalar", F, []), ("rank1", F, [5]), ("rank3", F, [2, 3, 4]),
                             ("rank5", F, [1, 2, 2, 2, 2]), ("int64", TensorProto.INT64, ["N", 3]),
                             ("float16", TensorProto.FLOAT16, [1, 4])):
        p = _model(folder, name, [helper.make_node("Identity", ["x"], ["y"])], [_vi("x", elem, dims)],
                   [_vi("y", elem, dims)])
        r = main("run", p, "--repeat", "1")
        handled(r.code, r.err, 0)
        assert "output `y`" in r.out, r.out
    p = _model(folder, "bool_out", [helper.make_node("Greater", ["x", "x"], ["y"])], [_vi("x", F, [1, 3])],
               [_vi("y", TensorProto.BOOL, [1, 3])])
    r = main("run", p)
    handled(r.code, r.err, 0, )
    assert "output `y`: 1x3 (bool)" in r.out and "0 true of 3" in r.out
    seq = helper.make_tensor_sequence_value_info("y", F, None)
    p = _model(folder, "seq_out", [helper.make_node("SequenceConstruct", ["x", "x"], ["y"])], [_vi("x", F, [1, 3])],
               [seq])
    r = main("run", p)
    handled(r.code, r.err, 0)
    assert "output `y`: a list of 2 items" in r.out
    p = _model(folder, "fails", [
        helper.make_node("Constant", [], ["s"], value=helper.make_tensor("s", TensorProto.INT64, [1], [7])),
        helper.make_node("Reshape", ["x", "s"], ["y"])], [_vi("x", F, [1, 3])], [_vi("y", F, None)])
    r = main("run", p)
    handled(r.code, r.err, 1, "onnxruntime failed while running")


def _endless_loop(folder: Path) -> Path:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []), _vi("v_in", TensorProto.FLOAT,
                                                                                         [1])],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("v_out", TensorProto.FLOAT, [1])])
    nodes = [helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
             helper.make_node("Loop", ["", "cond", "x"], ["y"], body=body)]
    return _model(folder, "endless", nodes, [_vi("x", TensorProto.FLOAT, [1])], [_vi("y", TensorProto.FLOAT, [1])])


def test_an_endless_model_stops_at_the_timeout(folder):
    p = _endless_loop(folder)
    t0 = time.monotonic()
    r = proc("run", p, "--timeout", "3", timeout=60)
    handled(r.returncode, r.stderr, 1, "took more than 3 s and was stopped; allow more time with --timeout")
    assert time.monotonic() - t0 < 30


# --- options ---------------------------------------------------------------------------------------------


OPTIONS = [
    (["check", "--max-layers", "0"], "--max-layers: expected a whole number from 1"),
    (["weights", "--seed", "-1"], "--seed: expected a whole number from 0"),
    (["run", "--seed", "1" + "0" * 5000], "--seed: expected a whole number from 0"),
    (["bench", "--threads", "100000"], "--threads: expected a whole number from 0 to 256"),
    (["bench", "--threads", "3000"], "--threads: expected a whole number from 0 to 256"),
    (["run", "--batch", "0"], "--batch: expected a whole number from 1"),
    (["run", "--max-memory", "9" * 400], "--max-memory: expected a size such as 16G"),
    (["compile", "--max-params", "1e400"], "--max-params: expected a whole number"),
    (["run", "--timeout", "nan"], "--timeout: expected a number of seconds"),
    (["render", "--timeout", "-1"], "--timeout: expected a number of seconds"),
    (["run", "--top", "99999999999"], "--top: expected a whole number from 1 to 1,000,000"),
]


@pytest.mark.parametrize("argv,message", OPTIONS, ids=[" ".join(a)[:40] for a, _ in OPTIONS])
def test_option_values_are_bounded_where_they_are_read(argv, message, folder):
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    r = main(*argv, spec)
    handled(r.code, r.err, 2, message)
    assert sorted(os.listdir(folder)) == ["spec.cnn"]


# --- processes: signals, children, stdout ----------------------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_sigterm_mid_write_leaves_no_temporary_and_the_old_output(folder):
    spec = folder / "big.cnn"
    spec.write_text("input 64x64x3\nrepeat 12 { conv f=3 n=512 p=same }\n")  # 28 M weights: about 110 MB to write
    out = folder / "net.onnx"
    out.write_bytes(b"the previous model")
    p = subprocess.Popen([sys.executable, "-m", "cnndsl", "compile", str(spec), "-o", str(out)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(n.startswith(".cnndsl-tmp-") for n in os.listdir(folder)) and p.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    if p.returncode == 0:  # the write won the race: then the new model is whole
        assert onnx.load(str(out), load_external_data=False).graph.name == "big"
    else:
        handled(p.returncode, err, 128 + signal.SIGTERM, "stopped by signal SIGTERM")
        assert out.read_bytes() == b"the previous model"
    assert sorted(os.listdir(folder)) == ["big.cnn", "net.onnx"]


def test_a_sigkill_leftover_is_removed_by_the_next_run(folder):
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    left = folder / f".cnndsl-tmp-{_dead_pid()}-abc123"
    left.mkdir()
    (left / "net.onnx").write_bytes(bytes(1000))
    r = main("compile", spec, "-o", folder / "net.onnx")
    handled(r.code, r.err, 0, f"note: removed `{left}`, a temporary left by a cnndsl run that was killed")
    assert sorted(os.listdir(folder)) == ["net.onnx", "spec.cnn"]


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: no pgrep needed)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def test_graphviz_has_a_time_bound_and_dies_with_cnndsl(folder):
    if not shutil.which("dot"):
        pytest.fail("Graphviz's dot is needed: ./dev installs it")
    spec = folder / "deep.cnn"
    spec.write_text("input 8x8x4\n" + "residual { conv f=3 n=4 p=same -> " * 150 + "relu" + " }" * 150 + "\n")
    out = folder / "deep.svg"
    # 150 nested residuals take Graphviz seconds; a bound far below that must stop it whatever the machine
    r = main("render", spec, "-o", out, "--timeout", "0.05", timeout=60)
    handled(r.code, r.err, 1, "Graphviz `dot` took more than 0.05 s", "--collapse or --depth")
    p = subprocess.Popen([sys.executable, "-m", "cnndsl", "render", str(spec), "-o", str(out)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child = None
    deadline = time.monotonic() + 60
    while child is None and time.monotonic() < deadline:
        child = next(iter(_children_of(p.pid)), None)
        time.sleep(0.05)
    assert child is not None, "dot never started"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    time.sleep(0.5)
    stat_file = Path(f"/proc/{child}/stat")  # gone, or at most a zombie waiting for its reaper
    assert not stat_file.exists() or stat_file.read_text().split(") ", 1)[1][0] == "Z"
    assert sorted(os.listdir(folder)) == ["deep.cnn"]


def test_stdout_on_a_full_device_is_one_message(folder):
    if not os.path.exists("/dev/full"):
        pytest.fail("needs Linux's /dev/full")
    spec = folder / "spec.cnn"
    spec.write_text(SMALL)
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "cnndsl", "summary", str(spec)], stdout=full,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    handled(r.returncode, r.stderr, 2, "cannot write to standard output: No space left on device")
    assert r.stderr.count("\n") == 1


def test_standard_input_is_bounded_like_a_spec_file():
    # `cnndsl check -` reads at most the spec size cap (16 MiB), then refuses in one line
    from cnndsl.safeio import MAX_SPEC_BYTES

    p = subprocess.run([sys.executable, "-m", "cnndsl", "check", "-"], input=b"\n" * (MAX_SPEC_BYTES + 10),
                       capture_output=True, timeout=120)
    assert p.returncode == 2 and b"standard input holds more than 16 MiB" in p.stderr
    assert b"Traceback" not in p.stderr
