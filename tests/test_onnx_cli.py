"""`cnndsl compile`, `run` and `weights` as a user runs them: files written (or not), exit codes, messages."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import ROOT, SPECS
from onnx import numpy_helper

LENET = SPECS / "lenet5.cnn"
EDGE = SPECS / "edge_detection.cnn"


def initializers(path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def no_traceback(r) -> None:
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err


def test_check_and_summary_do_not_import_onnx_numpy_onnxruntime_or_networkx():
    code = (
        "import sys\nfrom cnndsl import cli\n"
        f"assert cli.main(['check', {str(LENET)!r}]) == 0\n"
        f"assert cli.main(['summary', {str(LENET)!r}]) == 0\n"
        f"assert cli.main(['check', {str(EDGE)!r}]) == 0\n"
        "heavy = sorted(m for m in ('onnx', 'onnxruntime', 'numpy', 'networkx', 'torch') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr


def test_compile_writes_a_checked_reproducible_model(cli, tmp_path):
    a, b, c = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    r = cli("compile", LENET, "-o", a)
    assert r.code == 0, r.err
    assert f"wrote {a}" in r.out and "62,006 parameters" in r.out and "651,720 MACs" in r.out
    onnx.checker.check_model(str(a), full_check=True)
    m = onnx.load(str(a))
    assert (m.ir_version, m.opset_import[0].version) == (10, 21)
    assert [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == ["N", 3, 32, 32]
    assert "conv1.weight" in initializers(a)
    assert cli("compile", LENET, "-o", b).code == 0
    assert a.read_bytes() == b.read_bytes(), "the same spec and seed must give the same bytes"
    assert cli("compile", LENET, "-o", c, "--seed", "1").code == 0
    assert a.read_bytes() != c.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.onnx", "b.onnx", "c.onnx"], "no temp files left behind"


def test_compile_defaults_to_the_spec_name_beside_it(cli, tmp_path):
    spec = tmp_path / "tiny.cnn"
    spec.write_text("input 8x8x3\nconv f=3 n=4 act=relu -> gap -> fc 2\n")
    r = cli("compile", spec)
    assert r.code == 0, r.err
    assert (tmp_path / "tiny.onnx").is_file()


def test_external_data_gives_the_same_model(cli, tmp_path):
    inline, ext = tmp_path / "in.onnx", tmp_path / "ext.onnx"
    assert cli("compile", LENET, "-o", inline).code == 0
    r = cli("compile", LENET, "-o", ext, "--external-data")
    assert r.code == 0, r.err
    assert "ext.onnx.data" in r.out and (tmp_path / "ext.onnx.data").stat().st_size == 62006 * 4
    assert ext.stat().st_size < 10_000
    onnx.checker.check_model(str(ext), full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    ys = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
          for p in (inline, ext)]
    np.testing.assert_array_equal(*ys)


def test_weights_lists_names_and_its_template_round_trips(cli, tmp_path):
    r = cli("weights", LENET)
    assert r.code == 0, r.err
    assert "conv1.weight  6x3x5x5" in r.out and "fc1.weight    120x400" in r.out
    npz, a, b = tmp_path / "w.npz", tmp_path / "a.onnx", tmp_path / "b.onnx"
    assert cli("weights", LENET, "-o", npz).code == 0
    assert sorted(np.load(npz)) == sorted(initializers_names := [
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
        "fc2.bias", "fc3.weight", "fc3.bias"])
    # trained weights: scale the template and load it back by name
    arrays = {k: v * 2 for k, v in np.load(npz).items()}
    np.savez(npz, **arrays)
    assert cli("compile", LENET, "-o", a, "--weights", npz).code == 0
    got = initializers(a)
    for name in initializers_names:
        np.testing.assert_array_equal(got[name], arrays[name])
    assert cli("compile", LENET, "-o", b).code == 0
    np.testing.assert_array_equal(initializers(b)["fc1.weight"] * 2, got["fc1.weight"])


def test_fixed_kernels_are_listed_but_not_in_the_template(cli, tmp_path):
    r = cli("weights", EDGE, "-o", tmp_path / "w.npz")
    assert r.code == 0, r.err
    assert "fixed by the spec: w=vertical" in r.out
    assert list(np.load(tmp_path / "w.npz")) == []
    np.savez(tmp_path / "bad.npz", **{"conv1.weight": np.zeros((1, 1, 3, 3), np.float32)})
    r = cli("compile", EDGE, "-o", tmp_path / "e.onnx", "--weights", tmp_path / "bad.npz")
    assert r.code == 1 and "`conv1.weight`: fixed by the spec" in r.err


def test_bad_weights_are_all_reported_and_nothing_is_written(cli, tmp_path):
    npz, out = tmp_path / "w.npz", tmp_path / "out.onnx"
    assert cli("weights", LENET, "-o", npz).code == 0
    arrays = dict(np.load(npz))
    del arrays["conv2.bias"]
    arrays["fc1.weight"] = np.zeros((120, 401), np.float32)
    arrays["fc9.weight"] = np.zeros(3, np.float32)
    np.savez(npz, **arrays)
    out.write_bytes(b"an older model")
    r = cli("compile", LENET, "-o", out, "--weights", npz)
    assert r.code == 1
    no_traceback(r)
    assert "`conv2.bias`: missing, expected 16" in r.err
    assert "`fc1.weight`: shape 120x401, expected 120x400" in r.err
    assert "`fc9.weight`: not a weight of this network" in r.err
    assert "3 problems" in r.err and "nothing written" in r.err
    assert out.read_bytes() == b"an older model", "a failed compile must not touch an existing file"
    assert sorted(os.listdir(tmp_path)) == ["out.onnx", "w.npz"]


def test_a_weights_file_that_is_not_an_npz(cli, tmp_path):
    bad = tmp_path / "w.npz"
    bad.write_text("not a zip")
    r = cli("compile", LENET, "-o", tmp_path / "o.onnx", "--weights", bad)
    assert r.code == 1 and "not a NumPy .npz archive" in r.err
    r = cli("compile", LENET, "-o", tmp_path / "o.onnx", "--weights", tmp_path / "missing.npz")
    assert r.code == 2 and "cannot read" in r.err
    assert not (tmp_path / "o.onnx").exists()


def test_unusable_output_paths_exit_2(cli, tmp_path):
    r = cli("compile", LENET, "-o", tmp_path / "no" / "such" / "dir.onnx")
    assert r.code == 2 and "does not exist" in r.err
    r = cli("compile", LENET, "-o", tmp_path)
    assert r.code == 2 and "is a folder" in r.err
    no_traceback(r)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write into read-only folders")
def test_a_read_only_folder_exits_2(cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = cli("compile", LENET, "-o", ro / "m.onnx")
        assert r.code == 2 and "cannot write" in r.err
        no_traceback(r)
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_a_spec_with_errors_writes_nothing(cli, tmp_path):
    spec = tmp_path / "bad.cnn"
    spec.write_text("input 4x4x3\nconv f=7 n=8\n")
    r = cli("compile", spec)
    assert r.code == 1 and "shape-mismatch" in r.err
    assert sorted(os.listdir(tmp_path)) == ["bad.cnn"]


def test_run_the_notes_edge_detection(cli):
    r = cli("run", EDGE, "--input", SPECS / "edge6x6.npy")
    assert r.code == 0, r.err
    assert "read as one image, H x W x C = 6x6x1" in r.out
    assert r.out.count("0  30  30   0") == 4 and "latency:" in r.out
    r = cli("run", EDGE, "--input", SPECS / "edge6x6_flipped.npy")
    assert r.code == 0 and r.out.count("0  -30  -30    0") == 4


def test_run_reads_both_layouts_and_rejects_others(cli, tmp_path):
    img = np.load(SPECS / "edge6x6.npy")
    np.save(tmp_path / "hw.npy", img[:, :, 0])
    np.save(tmp_path / "nchw.npy", np.stack([img.transpose(2, 0, 1)] * 3))
    np.save(tmp_path / "bad.npy", np.zeros((5, 5, 1)))
    r = cli("run", EDGE, "--input", tmp_path / "hw.npy")
    assert r.code == 0 and "H x W = 6x6" in r.out and r.out.count("0  30  30   0") == 4
    r = cli("run", EDGE, "--input", tmp_path / "nchw.npy", "--repeat", "0")
    assert r.code == 0 and "a batch of 3, N x C x H x W = 3x1x6x6" in r.out and r.out.count("0  30  30   0") == 12
    r = cli("run", EDGE, "--input", tmp_path / "bad.npy")
    assert r.code == 2 and "H x W x C = 6x6x1" in r.err and "N x C x H x W = Nx1x6x6" in r.err  # usage, not the spec
    no_traceback(r)
    r = cli("run", EDGE, "--input", tmp_path / "missing.npy")
    assert r.code == 2


def test_run_an_onnx_file_shows_the_top_classes(cli, tmp_path):
    out = tmp_path / "lenet5.onnx"
    assert cli("compile", LENET, "-o", out).code == 0
    r = cli("run", out, "--batch", "2", "--top", "3")
    assert r.code == 0, r.err
    assert "output `softmax1`: 2 x 10 (N x F)" in r.out
    assert r.out.count("top 3: ") == 2
    assert cli("run", out, "--weights", tmp_path / "w.npz").code == 2
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00not a model")
    r = cli("run", broken)
    assert r.code == 1 and "cannot load" in r.err
    no_traceback(r)
    assert cli("run", tmp_path / "nope.onnx").code == 2
