"""The analyses (cnndsl/analyses/): receptive fields, floor truncation, memory, explain and diff, against
published reference figures and hand-worked small cases (tests/analyses/*.cnn, each with its working in
its comments, and the exact output pinned in a .golden file beside it).

After an intended change of wording, regenerate the golden files with CNNDSL_UPDATE_GOLDENS=1 and review
the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from hypothesis import given
from specgen import examples, valid_specs

from cnndsl.analyses import diff as diff_
from cnndsl.analyses import explain as explain_
from cnndsl.analyses import inputs, memory
from cnndsl.cli import main
from cnndsl.model import compile_file, compile_text

CASES = ROOT / "tests" / "analyses"


def _rf(m, name: str):
    f = m.graph.nodes[name]["rf"]
    return f.size, f.stride, f.padding


def _last(m, prefix: str) -> str:
    return [r.name for r in m.layers if r.name.startswith(prefix + ".")][-1]


# --- receptive fields: the reference figures (torchvision definitions, 224x224 or 299x299) -----------


@pytest.mark.parametrize("spec, layer, size, stride, padding", [
    # TF-slim receptive_field table (vgg_16 pool5): 212 / 32 / 90
    ("vgg16", "vgg_stage5.pool1", 212, 32, 90),
    # torchvision's AlexNet (p=2 on conv1), after the last pool: 195 / 32 / 66
    ("alexnet_torchvision", "pool3", 195, 32, 66),
    # TF-slim's alexnet_v2 (no padding on conv1): 195 / 32 / 64
    ("alexnet", "pool3", 195, 32, 64),
])
def test_receptive_field_reference_figures(spec, layer, size, stride, padding):
    m = compile_file(SPECS / f"{spec}.cnn")
    assert _rf(m, layer) == ((size, size), (stride, stride), (padding, padding))


def test_receptive_field_resnet50_stages():
    # TF-slim table, resnet_v1_50: block3 267 / 16 / 133, block4 427 / 32 / 213 (conv4_x, conv5_x here)
    m = compile_file(SPECS / "resnet50.cnn")
    assert _rf(m, _last(m, "conv4_x")) == ((267, 267), (16, 16), (133, 133))
    assert _rf(m, _last(m, "conv5_x")) == ((427, 427), (32, 32), (213, 213))


def test_receptive_field_inception_v3():
    # TF-slim table, inception_v3 Mixed_7c: 1311 / 32. The padding, 618, is not (1311 - 1)/2 - (32 - 1)/2:
    # the unpadded stem convs and reductions move the field's centre 37 pixels into the image.
    m = compile_file(SPECS / "inception_v3.cnn")
    f = m.graph.nodes["mixed_7c"]["rf"]
    assert (f.size, f.stride) == ((1311, 1311), (32, 32))
    assert f.padding == (618, 618) and f.centre2(0) == 2 * 37


@pytest.mark.parametrize("spec", sorted(p.stem for p in SPECS.glob("*.cnn")))
def test_zoo_has_no_analysis_warnings(spec):
    """torchvision's ResNets (and every other zoo network) are aligned at every merge and drop no pixel,
    except SqueezeNet's conv1, which does so as torchvision does and says `# allow: floor-truncation`."""
    m = compile_file(SPECS / f"{spec}.cnn")
    assert [w.code for w in m.warnings if w.code in ("rf-misaligned", "floor-truncation")] == []


def test_allow_comment_silences_only_its_line_and_code(tmp_path):
    spec = tmp_path / "t.cnn"
    spec.write_text("input 8x8x3\nconv f=3 s=2 n=4   # allow: floor-truncation\nconv f=2 s=2 n=4\n")
    m = compile_file(spec)
    assert [(w.code, w.span.line) for w in m.warnings] == [("floor-truncation", 3)]  # 3x3: (3 - 2) mod 2 = 1


def test_receptive_field_hand_worked():
    m = compile_file(CASES / "rf_window.cnn")  # the working is in the spec's comments
    assert _rf(m, "conv1") == ((3, 3), (1, 1), (1, 1))
    assert _rf(m, "conv2") == ((3, 9), (1, 1), (1, 4))
    assert _rf(m, "pool1") == ((4, 10), (2, 2), (1, 4))
    assert _rf(m, "conv3") == ((12, 18), (2, 2), (5, 8))
    assert _rf(m, "gap1") == ((42, 48), (32, 32), (5, 8))
    m = compile_file(CASES / "rf_merge.cnn")
    assert _rf(m, "add1") == ((3, 3), (2, 2), (1, 1))
    [w] = m.warnings
    assert w.code == "rf-misaligned" and "`a`" in w.message and "`b`" in w.message
    m = compile_file(CASES / "rf_declined.cnn")
    assert m.graph.nodes["conv1"]["rf"] is not None
    assert m.graph.nodes["upsample1"]["rf"] is None and m.graph.nodes["conv2"]["rf"] is None
    assert "follows `upsample1`" in m.rf.declined["conv2"]


# --- memory ----------------------------------------------------------------------------------------


def test_memory_hand_worked():
    """tests/analyses/memory.cnn, batch 1, float32 (4 bytes a number):

    inference: input 16 numbers; conv1 runs with input + output live, 16 + 32; relu1 with conv1's output
    and its own, 32 + 32 = 64 numbers = 256 bytes, the peak; conv2 then 32 + 16.
    training: weights 18 + 3 = 21 (84 bytes), as many gradients; kept for backward the input (16, by
    conv1) and conv1's output, which relu1 overwrites in place and conv2 reads (32): 48 numbers = 192 bytes;
    total 84 + 84 + 192 = 360. The peak comes in relu1's backward: kept 48 + the gradients of relu1's
    output and input, 32 + 32, + conv2's weight gradient 3 = 136 numbers = 544 bytes with the weights.
    """
    g = compile_file(CASES / "memory.cnn").graph
    i = memory.inference(g)
    assert (i.peak_bytes, i.peak_layer, i.sum_bytes) == (256, "relu1", 4 * (16 + 32 + 32 + 16))
    t = memory.training(g)
    assert (t.weights, t.grads, t.optimizer_state, t.saved, t.total) == (84, 84, 0, 192, 360)
    assert (t.peak, t.peak_at) == (544, "backward at `relu1`")
    adam = memory.training(g, optimizer="adam")
    assert adam.optimizer_state == 2 * 84 and adam.peak == 544 + 2 * 84
    half = memory.training(g, batch=2, dtype="bfloat16")
    assert (half.weights, half.saved) == (42, 192)  # weights halve; batch 2 in 2-byte numbers cancels out
    assert memory.inference(g, batch=3, dtype="int8").peak_bytes == 3 * 64


def test_inference_peak_is_a_fraction_of_the_sum():
    # the issue: "activations 90 MB" for ResNet-50 is the sum; the peak a runtime needs is about a tenth
    m = compile_file(SPECS / "resnet50.cnn")
    i = memory.inference(m.graph)
    assert i.sum_bytes == m.totals.activation_bytes  # the summary's "activations": every output, float32
    assert i.sum_bytes / 12 < i.peak_bytes < i.sum_bytes / 8


# --- golden files: explain (with the fields and warnings) and diff ------------------------------------


def _run(capsys, *argv: str) -> str:
    code = main(["--format", "concise", *argv])
    cap = capsys.readouterr()
    return f"$ cnndsl {' '.join(argv)}\n(exit {code})\n{cap.err}{cap.out}"


GOLDEN = [(f"{p.stem}.golden", ("explain", f"tests/analyses/{p.name}"))
          for p in sorted(CASES.glob("*.cnn")) if not p.stem.startswith("diff_")]
GOLDEN += [
    ("lenet5.golden", ("explain", "specs/lenet5.cnn")),
    ("notes_convnet.golden", ("explain", "specs/notes_convnet.cnn")),
    ("diff.golden", ("diff", "tests/analyses/diff_a.cnn", "tests/analyses/diff_b.cnn")),
]


@pytest.mark.parametrize("name, argv", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name, argv, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    got = _run(capsys, *argv)
    path = CASES / name
    if os.environ.get("CNNDSL_UPDATE_GOLDENS"):
        path.write_text(got)
    assert got == path.read_text()


# --- explain and diff on real specs ------------------------------------------------------------------


def test_explain_json_has_the_notes_numbers(capsys):
    assert main(["explain", "--json", str(SPECS / "lenet5.cnn"), "conv1"]) == 0
    [conv1] = json.loads(capsys.readouterr().out)
    steps = {s["what"]: s for s in conv1["steps"]}
    # the notes: ⌊(32 + 2·0 − 5)/1⌋ + 1 = 28; (5·5·3 + 1)·6 = 456; 5·5·3 · 28·28 · 6 = 352,800
    assert steps["output size"]["filled"] == "⌊(32 + 2·0 − 5)/1⌋ + 1" and steps["output size"]["value"] == 28
    assert steps["parameters"]["filled"] == "(5·5·3 + 1)·6" and steps["parameters"]["value"] == 456
    assert steps["MACs"]["value"] == 352_800


def test_explain_selects_a_block_and_refuses_unknown_names(capsys):
    assert main(["explain", str(SPECS / "resnet18.cnn"), "conv2_x.basic1"]) == 0
    out = capsys.readouterr().out
    assert "conv2_x.basic1.residual1.conv1:" in out and "conv2_x.basic2" not in out
    assert main(["explain", str(SPECS / "resnet18.cnn"), "conv2_x.basic9"]) == 2
    assert "no layer or block `conv2_x.basic9`" in capsys.readouterr().err


def test_diff_resnet18_to_resnet34(capsys):
    assert main(["diff", "--json", str(SPECS / "resnet18.cnn"), str(SPECS / "resnet34.cnn")]) == 0
    doc = json.loads(capsys.readouterr().out)
    # torchvision: resnet34 21,797,672 - resnet18 11,689,512 = +10,108,160 trainable parameters
    assert doc["totals"]["trainable_params"]["delta"] == 10_108_160
    added = [b["name"] for b in doc["added_blocks"]]
    # [2, 2, 2, 2] -> [3, 4, 6, 3] basic blocks: 1 + 2 + 4 + 1 added, by stage
    assert [n.split(".")[0] for n in added] == ["conv2_x"] + ["conv3_x"] * 2 + ["conv4_x"] * 4 + ["conv5_x"]
    assert {x["status"] for x in doc["layers"]} == {"same", "added"}


def test_diff_exit_code(capsys):
    a, b = str(CASES / "diff_a.cnn"), str(CASES / "diff_b.cnn")
    assert main(["diff", a, b]) == 0
    assert main(["diff", "--exit-code", a, b]) == 1
    assert main(["diff", "--exit-code", a, a]) == 0
    capsys.readouterr()


def test_cli_summary_memory_and_rf(cli):
    r = cli("summary", "--json", "--batch", "32", "--dtype", "float16", "--optimizer", "adam",
            SPECS / "resnet18.cnn")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    conv1 = doc["layers"][0]
    assert conv1["rf"] == {"size": [7, 7], "stride": [2, 2], "padding": [3, 3]}
    tr = doc["memory"]["training"]
    assert (tr["batch"], tr["dtype"], tr["optimizer"]) == (32, "float16", "adam")
    assert tr["weights"] == 2 * doc["totals"]["params"] and tr["optimizer_state"] == 2 * tr["grads"]
    assert doc["memory"]["inference"]["peak_bytes"] < doc["memory"]["inference"]["sum_bytes"]
    r = cli("summary", "--dtype", "int8", SPECS / "lenet5.cnn")
    assert r.code == 0 and "inference only" in r.out and "Training peak" not in r.out
    r = cli("summary", "--batch", "0", SPECS / "lenet5.cnn")
    assert r.code == 2 and "expected a whole number from 1" in r.err and "Traceback" not in r.err


def test_check_never_imports_torch_or_onnx_for_the_analyses():
    import subprocess
    import sys

    code = ("import sys; from cnndsl.cli import main; main(['summary', 'specs/resnet50.cnn']); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_docs_mention_every_analysis():
    text = Path(ROOT / "docs" / "analyses.md").read_text()
    for word in ("receptive field", "floor-truncation", "rf-misaligned", "Training peak", "cnndsl explain",
                 "cnndsl diff", "--exit-code"):
        assert word in text


# --- generated specs: the analyses hold their invariants on any valid network ----------------------


@examples(normal=60, full=1500)
@given(valid_specs())
def test_generated_specs_analyses_invariants(gen):
    m = compile_text(gen.text, "gen.cnn")
    g = m.graph
    for n, d in g.nodes(data=True):
        f = d["rf"]
        if f is None:
            continue
        assert min(f.size) >= 1 and min(f.stride) >= 1 and min(f.padding) >= 0, (n, f)
        for s in inputs(g)[n]:  # a field never shrinks along an edge
            fs = g.nodes[s]["rf"]
            if fs is not None and len(g.nodes[s]["shape"]) == 3 and g.nodes[s]["shape"][:2] != (1, 1):
                assert f.size[0] >= fs.size[0] and f.size[1] >= fs.size[1], (s, n)
    i = memory.inference(g, batch=2)
    biggest = max(d["size"] for _, d in g.nodes(data=True)) * 8
    assert biggest <= i.peak_bytes <= i.sum_bytes
    for opt in memory.OPTIMIZERS:
        t = memory.training(g, optimizer=opt)
        assert t.peak >= t.weights + t.grads + t.optimizer_state and t.total >= t.weights
    assert explain_.explain(m)  # every layer explains itself
    assert not diff_.diff(m, m).differs
