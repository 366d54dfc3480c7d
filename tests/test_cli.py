"""The `cnndsl` command as a user runs it: exit codes, output, the JSON contract, and no traceback for
any input however malformed."""

from __future__ import annotations

import json
import os

import pytest
from conftest import SPECS, run_cli

LENET = SPECS / "lenet5.cnn"


def test_check_ok(cli):
    r = cli("check", LENET)
    assert r.code == 0, r.err
    assert r.out.strip().endswith("62,006 parameters, 651,720 MACs")
    assert "ok" in r.out and r.err == ""


def test_summary_table_is_the_notes_table(cli):
    r = cli("summary", LENET)
    assert r.code == 0, r.err
    rows = {line.split()[0]: line for line in r.out.splitlines() if line[:1].isalpha()}
    # the notes' LeNet-5 table (corrected figures): shape, activation size, parameters
    assert "(28, 28, 6)" in rows["conv1"] and "4,704" in rows["conv1"] and rows["conv1"].split()[-3] == "456"
    assert "(5, 5, 16)" in rows["pool2"] and "400" in rows["pool2"]
    assert rows["fc1"].split()[-3] == "48,120"
    assert rows["fc2"].split()[-3] == "10,164"
    assert rows["fc3"].split()[-3] == "850"


def test_summary_json_contract(cli):
    r = cli("summary", "--json", LENET)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert {"network", "input", "layers", "totals"} <= set(doc)
    assert doc["network"] == "LeNet5"
    assert doc["input"]["shape"] == [32, 32, 3]
    first = doc["layers"][0]
    assert {"name", "op", "inputs", "shape", "size", "params", "macs", "line"} <= set(first)
    assert first == {**first, "name": "conv1", "op": "conv", "inputs": ["input"], "shape": [28, 28, 6],
                     "size": 4704, "params": 456, "macs": 352_800, "line": 7}
    assert doc["layers"][-1]["shape"] == [10]  # a vector's shape is [N]
    t = doc["totals"]
    assert t == {"params": 62_006, "trainable_params": 62_006, "non_trainable_params": 0, "macs": 651_720,
                 "flops": 1_303_440, "weight_bytes": 248_024, "activation_bytes": t["activation_bytes"]}
    names = [x["name"] for x in doc["layers"]]
    for layer in doc["layers"]:  # topological order: every input comes earlier
        assert all(i == "input" or names.index(i) < names.index(layer["name"]) for i in layer["inputs"])


def test_input_override(cli):
    r = cli("summary", "--json", "--input", "64x64x3", LENET)
    assert json.loads(r.out)["layers"][0]["shape"] == [60, 60, 6]
    assert cli("check", "--input", "64,64", LENET).code == 2


def test_spec_errors_exit_1_with_diagnostics(cli, spec):
    r = cli("check", spec("input 32x32x3\nconv f=3 n=8\ncnv f=3 n=8\n"))
    assert r.code == 1
    assert "spec.cnn:3:1: error[unknown-layer]: unknown layer kind `cnv`" in r.err
    assert "3 | cnv f=3 n=8" in r.err and "  | ^^^" in r.err
    assert r.out == ""


def test_usage_errors_exit_2(cli, tmp_path):
    assert cli("check", tmp_path / "missing.cnn").code == 2
    assert cli("check", tmp_path).code == 2  # a directory
    assert cli("frobnicate", LENET).code == 2
    assert cli().code == 2
    r = cli("check", tmp_path / "missing.cnn")
    assert "cannot read" in r.err and "Traceback" not in r.err


def test_concise_format(cli, spec):
    r = cli("--format", "concise", "check", spec("input 8x8x3\nconv f=9 n=1\n"))
    assert r.code == 1
    assert r.err.splitlines()[0].endswith("spec.cnn:2:1: error[shape-mismatch]: `conv` filter 9x9 is larger than "
                                          "its input 8x8x3")
    assert "|" not in r.err.splitlines()[0]


def test_layers_command_lists_every_kind(cli):
    from cnndsl.layers import INTERNAL, LAYERS

    r = cli("layers")
    assert r.code == 0
    listed = {line.split(":")[0].split()[0] for line in r.out.splitlines() if not line.startswith(" ")}
    assert listed == set(LAYERS) - INTERNAL
    assert "f      filter size f" in cli("layers", "conv").out
    assert cli("layers", "nope").code == 2


HOSTILE = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "nul": b"input 32x32x3\n\x00conv f=3 n=3",
    "latin1": "input 32x32x3\nconv f=3 n=3 # caf\xe9".encode("latin-1"),
    "huge_numbers": b"input 1000000000000x1000000000000x3\nconv f=3 n=1000000000000",
    "deep_parens": b"input 8x8x3\nconv f=" + b"(" * 5000 + b"3" + b")" * 5000 + b" n=1",
    "deep_blocks": b"input 8x8x3\n" + b"residual { " * 3000 + b"relu" + b" }" * 3000,
    "self_recursive": b"input 8x8x3\nblock b { b }\nb",
    "unicode_names": "input 8x8x3\nконв f=3 n=3".encode(),
    "long_line": b"input 8x8x3\n" + b"relu -> " * 20000 + b"relu",
    "only_comment": b"# nothing here\n",
    "crlf": b"input 8x8x3\r\nconv f=3 n=3\r\n",
    "division": b"input 8x8x3\nconv f=3 n=8/0",
    "negative": b"input 8x8x3\nconv f=3 n=-4",
    "float_channels": b"input 8x8x3\nconv f=3 n=2.5",
    "zero_stride": b"input 8x8x3\nconv f=3 s=0 n=2",
    "bad_import": b'import "/dev/null/x.cnn"\ninput 8x8x3\nrelu',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_never_crashes(name, tmp_path):
    p = tmp_path / f"{name}.cnn"
    p.write_bytes(HOSTILE[name])
    for cmd in ("check", "summary"):
        r = run_cli(cmd, p, timeout=60)
        assert r.code in (0, 1), (cmd, r.code, r.err[-2000:])
        assert "Traceback" not in r.err and "internal error" not in r.err
        if r.code == 1:
            assert f"{p}:" in r.err and "error[" in r.err


def test_crlf_and_huge_numbers_are_handled(tmp_path):
    p = tmp_path / "crlf.cnn"
    p.write_bytes(HOSTILE["crlf"])
    assert run_cli("check", p).code == 0
    p = tmp_path / "huge.cnn"
    p.write_bytes(HOSTILE["huge_numbers"])
    r = run_cli("check", p)
    assert r.code == 0  # checking and costing a giant network is arithmetic only


@pytest.mark.skipif(os.name != "posix", reason="posix pipes")
def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("cnndsl ")


def test_readme_examples_are_real_output(tmp_path):
    """The README's 30-second example is pasted from a real run; keep it so."""
    readme = (SPECS.parent / "README.md").read_text()
    spec = readme.split("$ cat quick.cnn\n", 1)[1].split("\n\n", 1)[0] + "\n"
    (tmp_path / "quick.cnn").write_text(spec)
    shown = readme.split("$ cnndsl summary quick.cnn\n", 1)[1].split("```", 1)[0]
    assert run_cli("summary", "quick.cnn", cwd=tmp_path).out == shown
    (tmp_path / "bad.cnn").write_text("input 32x32x3\nconv f=5 n=6 -> pool f=2 s=2\nconv f=7 n=16 s=2\nconv f=7 n=32\n")
    shown = readme.split("$ cnndsl check bad.cnn\n", 1)[1].split("```", 1)[0]
    assert run_cli("check", "bad.cnn", cwd=tmp_path).err == shown


@pytest.mark.parametrize("spec,args", [("resnet152", ["--collapse"]), ("googlenet", ["--depth", "0"]),
                                       ("densenet121", ["--depth", "1"])])
def test_summary_folds_blocks_and_keeps_the_totals(cli, spec, args):
    full = cli("summary", SPECS / f"{spec}.cnn")
    folded = cli("summary", *args, SPECS / f"{spec}.cnn")
    assert folded.code == 0, folded.err

    def rows(out: str) -> list[list[str]]:
        lines = out.splitlines()
        body = lines[lines.index(next(x for x in lines if x.startswith("---"))) + 1:]
        return [x.split("  ") for x in body[: body.index(next(x for x in body if x.startswith("---")))]]

    def column_sum(out: str, i: int) -> int:
        return sum(int([c for c in r if c.strip()][i].strip().replace(",", "")) for r in rows(out))

    assert len(rows(folded.out)) < len(rows(full.out)) / 3
    # every parameter and MAC is still counted once: the folded rows carry their blocks' totals
    assert column_sum(folded.out, -3) == column_sum(full.out, -3)
    assert column_sum(folded.out, -2) == column_sum(full.out, -2)
    assert folded.out.splitlines()[-4:] == full.out.splitlines()[-4:]


def test_summary_collapse_shows_runs_of_identical_blocks(cli):
    # ResNet-152's conv4_x: one projection bottleneck, then 35 identical ones (He et al. 2016, Table 1)
    out = cli("summary", "--collapse", SPECS / "resnet152.cnn").out
    assert "bottleneck(n=256, g=1, w=64, s=1) × 35: 175 layers" in out
    assert cli("summary", "--depth", "x", SPECS / "resnet152.cnn").code == 2


def test_readme_language_example_compiles():
    import cnndsl

    readme = (SPECS.parent / "README.md").read_text()
    example = readme.split("## The language at a glance\n\n```cnn\n", 1)[1].split("```", 1)[0]
    m = cnndsl.compile_text(example)
    assert m.name == "ResNetish" and m.layers[-1].shape == (1000,)
    assert m.warnings == []
