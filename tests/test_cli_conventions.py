"""The command line as users of ruff, rustc and git expect it: stdin, several files, options anywhere, JSON
on stdout, colour on a terminal only, completions, did-you-mean, fast --help, any stdout encoding."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, SPECS, run_cli

LENET = SPECS / "lenet5.cnn"
BAD = "input 8x8x3\nconv f=9 n=1\n"


def run(*args, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnndsl", *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, **(env or {})})


def test_stdin_is_dash(spec):
    p = run("check", "-", stdin=LENET.read_text())
    assert p.returncode == 0 and p.stdout.startswith("<stdin>: ok: LeNet5"), p.stderr
    p = run("check", "-", stdin=BAD)
    assert p.returncode == 1 and p.stderr.startswith("<stdin>:2:1: error[shape-mismatch]")
    assert "conv f=9 n=1" in p.stderr and "1 error in <stdin>" in p.stderr
    p = run("summary", "-", "--json", stdin=LENET.read_text())
    assert json.loads(p.stdout)["totals"]["params"] == 62_006
    p = run("render", "-", stdin=LENET.read_text())
    assert p.returncode == 2 and "needs `-o OUT`" in p.stderr
    p = run("render", "-", "-o", "-", stdin=LENET.read_text())
    assert p.returncode == 0 and p.stdout.startswith('digraph "LeNet5"')


def test_several_files_and_the_worst_exit_code(spec):
    bad = spec(BAD, "bad.cnn")
    r = run_cli("check", LENET, SPECS / "vgg16.cnn")
    assert r.code == 0 and len(r.out.splitlines()) == 2 and "VGG16" in r.out.splitlines()[1]
    r = run_cli("check", LENET, bad, SPECS / "vgg16.cnn")
    assert r.code == 1 and "VGG16" in r.out and f"1 error in {bad}" in r.err  # the others are still checked
    r = run_cli("check", LENET, bad.parent / "missing.cnn")
    assert r.code == 2 and "cannot read" in r.err
    r = run_cli("render", LENET, SPECS / "vgg16.cnn", "-o", bad.parent / "x.svg")
    assert r.code == 2 and "give one spec" in r.err
    docs = json.loads(run_cli("summary", "--json", LENET, SPECS / "vgg16.cnn").out)
    assert [d["network"] for d in docs] == ["LeNet5", "VGG16"]


def test_options_before_or_after_the_command_and_json_on_stdout(spec):
    bad = spec(BAD)
    for args in (("--format", "json", "check", bad), ("check", "--format", "json", bad),
                 ("check", bad, "--format", "json")):
        r = run_cli(*args)
        assert r.code == 1 and r.err == "", args
        (d,) = json.loads(r.out)
        assert d["code"] == "shape-mismatch" and d["span"]["line"] == 2
    r = run_cli("check", LENET, "--format=json")
    assert r.code == 0 and json.loads(r.out) == []  # a clean spec: an empty list, as ruff prints
    r = run_cli("check", LENET, bad, "--format", "concise")
    assert r.code == 1 and r.err.splitlines()[0].endswith("error[shape-mismatch]: `conv` filter 9x9 is larger than "
                                                          "its input 8x8x3")


def test_input_shape_and_input_array_are_different_options(tmp_path):
    assert json.loads(run_cli("summary", "--json", "--shape", "64x64x3", LENET).out)["layers"][0]["shape"] == \
        [60, 60, 6]
    r = run_cli("run", LENET, "--shape", "64x64x3", "--repeat", "0", "--top", "1")
    assert r.code == 0 and "1 x 3 x 64 x 64" in r.out, r.err
    r = run_cli("run", LENET, "--input", "64x64x3")
    assert r.code == 2 and "the input shape is `--shape`" in r.err
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    r = run_cli("run", LENET, "--input", tmp_path / "bad.npy")
    assert r.code == 2 and "not a NumPy .npy array" in r.err  # a usage problem, not an error in the spec


def test_did_you_mean():
    r = run_cli("chek", LENET)
    assert r.code == 2 and "unknown command `chek`; did you mean `check`?" in r.err
    r = run_cli("zzzz", LENET)
    assert r.code == 2 and "the commands are check, summary" in r.err


def test_colour_only_on_request_or_a_terminal(spec):
    bad = spec(BAD)
    plain = run("check", bad)
    assert "\x1b[" not in plain.stderr  # a pipe: no colour
    forced = run("check", bad, env={"FORCE_COLOR": "1"})
    assert "\x1b[31;1merror[shape-mismatch]" in forced.stderr and "\x1b[34;1m" in forced.stderr
    assert run("check", bad, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stderr == plain.stderr
    assert run("check", bad, "--color", "always").stderr == forced.stderr
    assert "\x1b[" not in run("check", bad, "--color", "never", env={"FORCE_COLOR": "1"}).stderr
    # without the escapes, the coloured text is the plain text
    import re

    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stderr) == plain.stderr


def test_any_stdout_encoding():
    p = run("summary", "--collapse", "--tree", SPECS / "resnet152.cnn", env={"PYTHONIOENCODING": "ascii"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert "bottleneck(n=256, g=1, w=64, s=1) x 35" in p.stdout and "|-" in p.stdout
    p = run("render", SPECS / "inception_module.cnn", "-o", "-", env={"PYTHONIOENCODING": "ascii"})
    assert p.returncode == 0 and "||" in p.stdout


def test_help_and_version_import_no_compiler():
    code = ("import sys, cnndsl.cli as c\n"
            "for argv in (['--help'], ['--version'], ['check', '--help'], ['summary', '--help']):\n"
            "    assert c.main(argv) == 0\n"
            "heavy = {'networkx', 'lark', 'numpy', 'onnx', 'cnndsl.model'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr


def test_cli_defaults_agree_with_the_compiler():
    from cnndsl import cli, ir, model

    assert (cli.MAX_NODES, cli.MAX_PARAMS, cli.MAX_MEMORY) == (ir.MAX_NODES, model.MAX_PARAMS, model.MAX_MEMORY)


def test_every_command_is_declared_once_and_documented():
    from cnndsl import cli

    readme = (ROOT / "README.md").read_text()
    for name in cli.COMMANDS:
        assert f"`cnndsl {name}" in readme, f"README's command table lacks `{name}`"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell, tmp_path):
    r = run_cli("completion", shell)
    assert r.code == 0
    from cnndsl import cli

    for name in cli.COMMANDS:
        assert name in r.out
    assert "--collapse" in r.out or "collapse" in r.out
    exe = shutil.which(shell)
    if shell == "bash":  # bash is always there: the script parses and completes
        assert exe, "bash is needed for this test"
        script = tmp_path / "c.bash"
        script.write_text(r.out)
        probe = (f"source {script}; COMP_WORDS=(cnndsl su); COMP_CWORD=1; _cnndsl; echo ${{COMPREPLY[@]}}; "
                 f"COMP_WORDS=(cnndsl render x.cnn --rank); COMP_CWORD=3; _cnndsl; echo ${{COMPREPLY[@]}}; "
                 f"COMP_WORDS=(cnndsl render x.cnn --rankdir ''); COMP_CWORD=4; _cnndsl; echo ${{COMPREPLY[@]}}")
        p = subprocess.run([exe, "-c", probe], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines() == ["summary", "--rankdir", "TB LR BT RL"]
    elif exe:  # zsh and fish: syntax only, where installed
        check = [exe, "-n", "-c", r.out] if shell == "zsh" else [exe, "--no-execute", "-c", r.out]
        assert subprocess.run(check, capture_output=True, timeout=30).returncode == 0


def test_a_command_line_builds_only_its_subcommand_and_parses_the_same():
    """`cnndsl check` declares check's arguments alone (argparse set-up of every subcommand was 12 ms of
    it); each subcommand's parser, help and defaults are those of the whole parser."""
    from cnndsl import cli

    def sub(ap, name):
        return next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction)).choices[name]

    whole = cli.build_parser()
    for name in cli.COMMANDS:
        assert cli._named_command(["--format", "json", name, "x.cnn"]) == name
        assert sub(cli.build_parser(name), name).format_help() == sub(whole, name).format_help(), name
    assert cli._named_command(["--help", "check"]) is None and cli._named_command(["chek", "x"]) is None
    args = cli.build_parser("check").parse_args(["--color", "never", "check", "a.cnn", "b.cnn", "--shape", "8x8x3"])
    assert (args.command, args.files, args.shape, args.color) == ("check", ["a.cnn", "b.cnn"], (8, 8, 3), "never")
