"""Hostile input never crashes cnndsl: mutated specs go through check, summary, render and compile (in
process through cnndsl.cli.main, and a handful through real processes), always exit 0, 1 or 2 without a
traceback, within a time bound, and never allocate the weights of an absurd model. Interesting cases
live in tests/fuzz_corpus/, each with the outcome it must keep."""

from __future__ import annotations

import io
import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from hypothesis import given
from hypothesis import strategies as st
from specgen import examples, valid_specs
from test_properties import agree_end_to_end

import cnndsl
from cnndsl import cli

CORPUS = sorted((ROOT / "tests" / "fuzz_corpus").glob("*.cnn"))
SEEDS = [p.read_bytes() for p in sorted(SPECS.glob("*.cnn")) + sorted((ROOT / "tests" / "errors").glob("*.cnn"))]
TIME_LIMIT = 20  # seconds for one command on one input; every case so far takes well under one
SMALL = ["--max-params", "2000000", "--max-memory", "64M"]  # compile only what is cheap to build and check


class Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """Interrupt the body after `seconds` (SIGALRM, so the main thread only: pytest runs tests there)."""

    def fire(signum, frame):
        raise Timeout

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_main(*argv) -> Result:
    out, err = io.StringIO(), io.StringIO()
    try:
        with time_limit(TIME_LIMIT), redirect_stdout(out), redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
    except Timeout:
        pytest.fail(f"`cnndsl {' '.join(map(str, argv))}` took more than {TIME_LIMIT} s")
    return Result(code, out.getvalue(), err.getvalue())


def assert_handled(r: Result, argv) -> None:
    assert r.code in (0, 1, 2), (argv, r.code, r.err[-3000:])
    assert "Traceback" not in r.err and "internal error" not in r.err, (argv, r.err[-3000:])


def commands(path: Path, out: Path) -> list[list]:
    return [
        ["check", path],
        ["--format", "json", "summary", path],
        ["summary", "--json", path],
        ["render", "-o", "-", "--collapse", path],
        ["render", "-o", out / "net.dot", path],
        ["compile", "-o", out / "net.onnx", *SMALL, path],
        ["run", "--repeat", "0", *SMALL, path],
    ]


def feed(data: bytes, folder: Path) -> list[Result]:
    """Every command on one input; each must handle it."""
    path = folder / "fuzz.cnn"
    path.write_bytes(data)
    results = []
    for argv in commands(path, folder):
        r = run_main(*argv)
        assert_handled(r, argv)
        results.append(r)
    return results


# --- mutations ---------------------------------------------------------------------------------------

VOCAB = [b"->", b"|", b"{", b"}", b"(", b")", b"[", b"]", b",", b"=", b"\n", b"#", b"conv", b"fc", b"pool", b"add",
         b"concat", b"residual", b"shortcut", b"repeat", b"block", b"input", b"output", b"import", b"defaults",
         b"network", b"f=3", b"n=", b"s=0", b"p=same", b"p=-1", b"x", b"0", b"1", b"-", b"*", b"/", b'"', b"\t",
         b"1000000000", b"1000000000000", b"1e308", b"999999999999999999999999", b"\xff", b"\xc3", b"\x00", b"\r"]


@st.composite
def mutated(draw) -> bytes:
    """A seed spec (the zoo, the golden error cases, or a generated one) with one to four mutations."""
    if draw(st.booleans()):
        data = draw(st.sampled_from(SEEDS))
    else:
        data = draw(valid_specs(max_stmts=3)).text.encode()
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.sampled_from(MUTATIONS))(draw, data)
    return data


def _at(draw, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def m_delete(draw, data):
    i = _at(draw, data)
    return data[:i] + data[i + draw(st.integers(1, 40)):]


def m_duplicate(draw, data):
    i = _at(draw, data)
    j = min(len(data), i + draw(st.integers(1, 200)))
    return data[:j] + data[i:j] * draw(st.integers(1, 3)) + data[j:]


def m_swap_tokens(draw, data):
    toks = re.split(rb"(\s+)", data)
    if len(toks) < 3:
        return data
    i, j = draw(st.integers(0, len(toks) - 1)), draw(st.integers(0, len(toks) - 1))
    toks[i], toks[j] = toks[j], toks[i]
    return b"".join(toks)


def m_insert_token(draw, data):
    i = _at(draw, data)
    return data[:i] + draw(st.sampled_from(VOCAB)) + data[i:]


def m_insert_bytes(draw, data):
    i = _at(draw, data)
    return data[:i] + draw(st.binary(min_size=1, max_size=12)) + data[i:]


def m_truncate(draw, data):
    return data[: _at(draw, data)]


def m_number(draw, data):
    """Replace one number by an extreme one: 0, -1, 10^9, 10^12, 10^30, a float."""
    nums = list(re.finditer(rb"\d+", data))
    if not nums:
        return data
    m = draw(st.sampled_from(nums))
    new = draw(st.sampled_from([b"0", b"-1", b"1000000000", b"1000000000000", b"10" * 15, b"2.5", b"1e9"]))
    return data[: m.start()] + new + data[m.end():]


def m_long_line(draw, data):
    return data + b"\n" + b"relu -> " * draw(st.integers(100, 3000)) + b"relu\n"  # longer ones: PROCESS_CASES


def m_deep_nesting(draw, data):
    k = draw(st.sampled_from([50, 500, 3000]))
    opener = draw(st.sampled_from([b"residual { ", b"add { identity | ", b"repeat 1 { ", b"concat { "]))
    return data + b"\n" + opener * k + b"relu" + b" }" * k + b"\n"


def m_deep_expression(draw, data):
    k = draw(st.sampled_from([100, 2000]))
    return data + b"\nconv f=" + b"(" * k + b"1" + b")" * k + b" n=" + b"-" * k + b"2\n"


def m_recursive_blocks(draw, data):
    return data + draw(st.sampled_from([
        b"\nblock r1 { r1 }\nr1\n", b"\nblock r1 { r2 }\nblock r2(n=1) { r1 -> relu }\nr1\n",
        b"\nblock r1(x=1) { repeat 2 { r1(x) } }\nr1\n",
    ]))


def m_huge_repeat(draw, data):
    n = draw(st.sampled_from([b"1000000000", b"250001", b"99999999999999999999", b"0"]))
    return data + b"\nrepeat " + n + b" { conv f=1 n=2 }\n"


def m_huge_size(draw, data):
    line = draw(st.sampled_from([
        b"fc 1000000000000", b"conv f=1 n=1000000000000", b"upsample 1000000000000", b"dwconv f=1 m=1000000000",
        b"deconv f=1000000 s=1000000 n=1000000", b"pool f=1 s=1000000000000",
    ]))
    return data + b"\n" + line + b"\n"


def m_non_utf8(draw, data):
    i = _at(draw, data)
    return data[:i] + draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80abc"])) + data[i:]


MUTATIONS = [m_delete, m_duplicate, m_swap_tokens, m_insert_token, m_insert_bytes, m_truncate, m_number,
             m_long_line, m_deep_nesting, m_deep_expression, m_recursive_blocks, m_huge_repeat, m_huge_size, m_non_utf8]


@examples(normal=120, full=3000)
@given(mutated())
def test_mutated_specs_never_crash(tmp_path_factory, data):
    feed(data, tmp_path_factory.mktemp("fuzz"))


# --- the corpus ----------------------------------------------------------------------------------------


def _expectation(data: bytes) -> list[str]:
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    assert first.startswith("# expect: "), "a corpus case starts with `# expect: ok` or `# expect: error CODE L:C`"
    return first[len("# expect: "):].split()


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_case(path, tmp_path):
    data = path.read_bytes()
    expect = _expectation(data)
    results = feed(data, tmp_path)
    check = run_main("--format", "json", "check", path)
    if expect[0] == "ok":
        assert check.code == 0 and json.loads(check.out) == [], check.out  # no error, no warning
        m = cnndsl.compile_file(path)
        agree_end_to_end(m.source, [m.graph.nodes[o]["shape"] for o in m.outputs])
    else:
        assert expect[0] == "error"
        code, where = expect[1], expect[2]
        assert check.code == 1 and all(r.code == 1 for r in results), [r.err for r in results]
        first = [d for d in json.loads(check.out) if d["severity"] == "error"][0]
        assert (first["code"], f"{first['span']['line']}:{first['span']['col']}") == (code, where), first


# --- absurd sizes: refused before anything is allocated --------------------------------------------------


ABSURD = {
    "fc": "input 224x224x3\nfc 1000000000000\n",
    "conv": "input 8x8x3\nconv f=3 n=1000000000 -> conv f=3 n=1000000000\n",
    "activations": "input 8x8x3\nupsample 1000000\n",
    "int64": "input 8x8x1\nupsample 1000000000000 -> upsample 1000000000000\n",
}


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_absurd_models_are_refused_before_allocation(name, tmp_path):
    p = tmp_path / f"{name}.cnn"
    p.write_text(ABSURD[name])
    assert run_main("check", p).code == 0  # costing a giant network is arithmetic only
    for argv in (["compile", "-o", tmp_path / "x.onnx", p], ["run", p], ["weights", "-o", tmp_path / "w.npz", p]):
        r = run_main("--format", "json", *argv)
        assert r.code == 1, (argv, r.err)
        (d,) = json.loads(r.out)  # JSON diagnostics go to stdout
        assert d["code"] == "too-large" and d["span"]["line"] == ABSURD[name].count("\n"), d
    assert sorted(os.listdir(tmp_path)) == [p.name]  # nothing written, not even a temporary file


def test_limits_are_options(tmp_path):
    p = tmp_path / "lenet.cnn"
    p.write_bytes((SPECS / "lenet5.cnn").read_bytes())
    r = run_main("--format", "json", "compile", "-o", tmp_path / "l.onnx", "--max-params", "62005", p)
    assert r.code == 1 and json.loads(r.out)[0]["message"].startswith("the network has 62,006 parameters")
    assert run_main("compile", "-o", tmp_path / "l.onnx", "--max-params", "62006", p).code == 0
    r = run_main("--format", "json", "run", "--batch", "1000", "--max-memory", "16M", "--repeat", "0", p)
    assert r.code == 1 and "activations at batch 1000" in json.loads(r.out)[0]["message"]
    assert run_main("run", "--max-memory", "16M", "--repeat", "0", p).code == 0
    assert run_main("run", "--max-memory", "lots", p).code == 2


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_absurd_compile_in_a_process_with_little_memory(tmp_path):
    """With the address space capped at 4 GiB, the 145-trillion-parameter network is refused, not attempted."""
    p = tmp_path / "huge.cnn"
    p.write_text(ABSURD["fc"])

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    r = subprocess.run([sys.executable, "-m", "cnndsl", "compile", "-o", str(tmp_path / "x.onnx"), str(p)],
                       capture_output=True, text=True, timeout=120, preexec_fn=cap, cwd=ROOT)
    assert r.returncode == 1 and "error[too-large]" in r.stderr, r.stderr


# --- a handful through real processes ----------------------------------------------------------------------

PROCESS_CASES = {
    "deep_nesting": b"input 8x8x3\n" + b"residual { " * 20000 + b"relu" + b" }" * 20000,
    "deep_parens": b"input 8x8x3\nconv f=" + b"(" * 50000 + b"3" + b")" * 50000 + b" n=1",
    "recursive": b"input 8x8x3\nblock a { b }\nblock b { a }\na\n",
    "huge_repeat": b"input 8x8x3\nrepeat 1000000000 { conv f=1 n=2 }\n",
    "non_utf8": b"input 8x8x3\nconv f=3 n=2 # \xff\xfe\n",
    "binary": bytes(range(256)) * 64,
    "long_line": b"input 8x8x3\n" + b"relu -> " * 30000 + b"relu\n",
}


@pytest.mark.parametrize("name", sorted(PROCESS_CASES))
def test_hostile_input_in_real_processes(name, tmp_path):
    p = tmp_path / f"{name}.cnn"
    p.write_bytes(PROCESS_CASES[name])
    for argv in (["check", p], ["render", "-o", tmp_path / "x.dot", p], ["compile", "-o", tmp_path / "x.onnx", p]):
        r = subprocess.run([sys.executable, "-m", "cnndsl", *map(str, argv)], capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
        assert r.returncode in (0, 1), (argv, r.returncode, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and (r.returncode == 0 or "error[" in r.stderr)


# --- option values, weights archives and ONNX models (issue #15) ----------------------------------------------

HOSTILE_VALUES = ["0", "-1", "1", "-0", "1e400", "nan", "inf", "-inf", "", " ", "1_000", "0x10", "١٢",
                  "9" * 40, "9" * 5000, "18446744073709551617", "2.5", "16G", "99999T", "lots", "\x1b[31m", "-",
                  "/dev/null", "/dev/zero", ".", "..", "/", "a" * 300, "/nonexistent/x.onnx", "x.unknown"]
OPTIONS = {
    "check": ["--max-layers", "--input", "--allow-import"],
    "summary": ["--max-layers", "--input", "--depth"],
    "render": ["--max-layers", "--depth", "--rankdir", "--timeout", "-o"],
    "compile": ["--max-layers", "--max-params", "--max-memory", "--seed", "--weights", "-o", "--svg", "--timeout"],
    "weights": ["--seed", "--max-params", "--max-memory", "-o"],
    "run": ["--batch", "--top", "--repeat", "--seed", "--max-memory", "--max-params", "--input", "--timeout",
            "--weights"],
    "bench": ["--batch", "--threads", "--warmup", "--runs", "--providers", "--max-memory", "--timeout"],
}


@st.composite
def hostile_argv(draw) -> list[str]:
    """A command with one to three options set to hostile values (and the rest sane, so it runs fast)."""
    cmd = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [cmd]
    for opt in draw(st.lists(st.sampled_from(OPTIONS[cmd]), min_size=1, max_size=3, unique=True)):
        argv += [opt, draw(st.sampled_from(HOSTILE_VALUES))]
    return argv


@examples(normal=60, full=2000)
@given(hostile_argv())
def test_hostile_option_values_never_crash(tmp_path_factory, argv):
    folder = tmp_path_factory.mktemp("opts")
    spec = folder / "spec.cnn"
    spec.write_text("input 8x8x3\nconv f=3 n=4 -> relu -> fc 10\n")
    safe = ["--repeat", "0"] if argv[0] == "run" and "--repeat" not in argv else []
    safe += ["--runs", "1", "--warmup", "0", "--batch", "1"] if argv[0] == "bench" else []
    before = spec.read_bytes()
    cwd = os.getcwd()
    os.chdir(folder)  # an output named by a hostile value (`-o nan`) lands in the test's folder
    try:
        r = run_main(*argv, *safe, spec)
    finally:
        os.chdir(cwd)
    assert_handled(r, argv)
    assert spec.read_bytes() == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/zero").st_mode)


def _bytes_mutations(draw, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "flip" and data:
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
        elif how == "delete":
            data = data[:i] + data[i + draw(st.integers(1, 64)):]
        elif how == "insert":
            data = data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
        elif how == "truncate":
            data = data[:i]
        else:
            data = data[:i] + data[i:i + 256] * 2 + data[i + 256:]
    return data


_ARCHIVE_SPEC = "input 8x8x3\nconv f=3 n=4 -> bn -> relu -> fc 10\n"


@st.composite
def mutated_archive(draw) -> bytes:
    import io as _io
    import zipfile

    import numpy as np

    buf = _io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    names = {"conv1.weight": (4, 3, 3, 3), "conv1.bias": (4,), "bn1.scale": (4,), "bn1.bias": (4,),
             "bn1.mean": (4,), "bn1.var": (4,), "fc1.weight": (10, 144), "fc1.bias": (10,)}
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, shape in names.items():
            member = name + draw(st.sampled_from([".npy", ".npy", ""]))
            b = _io.BytesIO()
            np.lib.format.write_array(b, np.ones(shape, np.float32))
            zf.writestr(member, b.getvalue())
    return _bytes_mutations(draw, buf.getvalue())


@examples(normal=40, full=1500)
@given(mutated_archive())
def test_mutated_weights_archives_never_crash(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("npz")
    spec = folder / "spec.cnn"
    spec.write_text(_ARCHIVE_SPEC)
    w = folder / "w.npz"
    w.write_bytes(data)
    out = folder / "net.onnx"
    out.write_bytes(b"previous")
    r = run_main("compile", spec, "--weights", w, "-o", out)
    assert_handled(r, ["compile", "--weights"])
    if r.code != 0:
        assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(folder)) == ["net.onnx", "spec.cnn", "w.npz"]


@st.composite
def mutated_onnx(draw) -> bytes:
    return _bytes_mutations(draw, _onnx_seed())


_SEED_MODEL: list[bytes] = []


def _onnx_seed() -> bytes:
    if not _SEED_MODEL:
        from cnndsl.backends import onnx as ob

        _SEED_MODEL.append(ob.to_onnx(cnndsl.compile_text(_ARCHIVE_SPEC)).to_bytes())
    return _SEED_MODEL[0]


@examples(normal=4, full=150)
@given(mutated_onnx())
def test_mutated_onnx_models_never_crash(tmp_path_factory, data):
    """In a real process each: a damaged protobuf must not take the test run down if it crashed native code."""
    folder = tmp_path_factory.mktemp("onnx")
    p = folder / "model.onnx"
    p.write_bytes(data)
    for argv in (["run", "--repeat", "0", "--timeout", "30", p], ["bench", "--runs", "1", "--warmup", "0", p]):
        r = subprocess.run([sys.executable, "-m", "cnndsl", *map(str, argv)], capture_output=True, text=True,
                           timeout=90, cwd=ROOT)
        assert r.returncode in (0, 1, 2), (argv, r.returncode, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-2000:]
