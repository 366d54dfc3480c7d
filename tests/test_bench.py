"""`cnndsl bench`: what it measures and prints, its JSON document and its exit codes. Behaviour only:
no timing is asserted (timings belong in benchmarks/, not in the test suite)."""

from __future__ import annotations

import json

import pytest

from cnndsl.bench import percentile

SMALL = """\
network Small
input 8x8x3
conv f=3 n=4 p=same -> relu -> pool f=2 s=2 -> fc 10
"""
QUICK = ("--runs", "2", "--warmup", "1", "--threads", "1")


def test_bench_table_has_every_batch(cli, spec):
    r = cli("bench", spec(SMALL), "--batch", "1,2", *QUICK)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert "spec.cnn" in lines[0]
    assert lines[1].split()[-1] == "762"  # parameters: (3*3*3 + 1)*4 + (4*4*4 + 1)*10
    assert any(line.startswith("batch 1") for line in lines) and any(line.startswith("batch 2") for line in lines)
    assert sum("median ms" in line for line in lines) == 2 and sum("p90 ms" in line for line in lines) == 2
    assert "1 intra-op threads" in r.out and "1 warm-up + 2 timed runs" in r.out
    assert "bench: spec.cnn, batch 2" in r.err  # progress goes to stderr, never into the table


def test_bench_json_document(cli, spec):
    r = cli("bench", spec(SMALL), "--batch", "1,2", "--json", *QUICK)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert {"onnxruntime", "providers", "threads", "warmup", "runs", "batches", "seed", "models"} <= set(doc)
    assert doc["providers"] == ["CPUExecutionProvider"] and doc["batches"] == [1, 2] and doc["runs"] == 2
    (m,) = doc["models"]
    assert m["name"] == "Small" and m["params"] == 762 and m["macs"] == 8 * 8 * 4 * 27 + 64 * 10
    assert m["input"] == ["N", 3, 8, 8]
    assert [b["batch"] for b in m["results"]] == [1, 2]
    for b in m["results"]:
        assert b["runs"] == 2
        assert 0 < b["min_ms"] <= b["median_ms"] <= b["p90_ms"]
        assert b["throughput"] == pytest.approx(b["batch"] * 1e3 / b["median_ms"])


def test_bench_several_models_side_by_side(cli, spec, tmp_path):
    onnx_path = tmp_path / "small.onnx"
    assert cli("compile", spec(SMALL), "-o", onnx_path).code == 0
    r = cli("bench", spec(SMALL, "a.cnn"), onnx_path, "--batch", "1", *QUICK)
    assert r.code == 0, r.err
    head = r.out.splitlines()[0].split()
    assert head == ["a.cnn", "small.onnx"]
    params = r.out.splitlines()[1].split()
    assert params[-2:] == ["762", "762"]  # an .onnx model's parameters are its initializers
    assert r.out.splitlines()[2].split()[-1] == "-"  # ... and its MACs are unknown


def test_bench_json_from_onnx_model(cli, spec, tmp_path):
    onnx_path = tmp_path / "small.onnx"
    assert cli("compile", spec(SMALL), "-o", onnx_path).code == 0
    r = cli("bench", onnx_path, "--batch", "2", "--json", *QUICK)
    assert r.code == 0, r.err
    (m,) = json.loads(r.out)["models"]
    assert m["macs"] is None and m["params"] == 762 and m["results"][0]["batch"] == 2


@pytest.mark.parametrize("argv, code, message", [
    (("missing.cnn",), 2, "cannot read `missing.cnn`"),
    (("{spec}", "--batch", "0"), 2, "expected batch sizes"),
    (("{spec}", "--batch", "1,x"), 2, "expected batch sizes"),
    (("{spec}", "--runs", "0"), 2, "argument --runs: expected a whole number from 1 to"),
    (("{spec}", "--providers", "NoSuchExecutionProvider"), 2, "is not in this onnxruntime"),
    (("{bad}",), 1, "error[unknown-layer]"),
    (("{spec}", "{onnx_junk}"), 1, "onnxruntime cannot load"),
    (("{onnx_junk}", "--no-weights"), 2, "apply to a .cnn spec"),
])
def test_bench_error_exits(cli, spec, tmp_path, argv, code, message):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    paths = {"spec": spec(SMALL), "bad": spec("input 8x8x3\nconvv f=3 n=4\n", "bad.cnn"), "onnx_junk": junk}
    r = cli("bench", *QUICK, *(a.format(**paths) for a in argv))
    assert r.code == code, (r.out, r.err)
    assert message in r.err
    assert "Traceback" not in r.err


def test_percentile_interpolates_like_numpy():
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(xs, 50) == 3.0 and percentile(xs, 90) == pytest.approx(4.6) and percentile(xs, 100) == 5.0
    assert percentile([7.0], 90) == 7.0
