"""The lecture notes' arithmetic, checked through real specs: output sizes, same padding, pooling,
parameter counts and the notes' worked examples (with the transcription errors corrected as listed in
the reference README)."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kinds import KINDS

import cnndsl
from cnndsl.backends import onnx as ob


def out_size(n: int, f: int, s: int = 1, p: int = 0) -> int:
    """The notes: floor((n + 2p - f) / s) + 1."""
    return math.floor((n + 2 * p - f) / s) + 1


def shape_of(text: str) -> tuple:
    m = cnndsl.compile_text(text)
    return m.layers[-1].shape


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 64), f=st.integers(1, 9), s=st.integers(1, 4), p=st.integers(0, 4), c=st.integers(1, 4),
       k=st.integers(1, 8))
def test_conv_output_size_is_the_notes_formula(n, f, s, p, c, k):
    text = f"input {n}x{n}x{c}\nconv f={f} s={s} p={p} n={k}"
    if n + 2 * p < f:
        with pytest.raises(cnndsl.CompileError) as e:
            cnndsl.compile_text(text)
        assert e.value.diagnostics[0].code == "shape-mismatch"
        return
    o = out_size(n, f, s, p)
    m = cnndsl.compile_text(text)
    row = m.layers[0]
    assert row.shape == (o, o, k)
    assert row.params == (f * f * c + 1) * k  # (f*f*C_in + 1) * n, with bias
    assert row.macs == f * f * c * o * o * k  # filter size x positions x filters


@settings(max_examples=100, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), f=st.integers(1, 7), s=st.integers(1, 3))
def test_same_padding_keeps_ceil_n_over_s(h, w, f, s):
    m = cnndsl.compile_text(f"input {h}x{w}x2\nconv f={f} s={s} p=same n=3")
    assert m.layers[0].shape == (math.ceil(h / s), math.ceil(w / s), 3)


@pytest.mark.parametrize("f", [1, 3, 5, 7, 9, 11])
def test_same_padding_for_stride_1_is_f_minus_1_over_2(f):
    # the notes: "same" padding for stride 1 is p = (f - 1) / 2; with that p, n stays n
    a = cnndsl.compile_text(f"input 20x20x1\nconv f={f} p=same n=1")
    b = cnndsl.compile_text(f"input 20x20x1\nconv f={f} p={(f - 1) // 2} n=1")
    assert a.layers[0].shape == b.layers[0].shape == (20, 20, 1)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 64), f=st.integers(1, 5), s=st.integers(1, 4), c=st.integers(1, 5))
def test_pooling_keeps_channels(n, f, s, c):
    assume(f <= n)
    m = cnndsl.compile_text(f"input {n}x{n}x{c}\npool f={f} s={s}")
    assert m.layers[0].shape == (out_size(n, f, s), out_size(n, f, s), c)
    assert m.layers[0].params == 0


@pytest.mark.parametrize("n,f,s,p,expected", [
    # PyTorch MaxPool2d(ceil_mode=True) sizes, e.g. GoogLeNet's 112 -> 56 and 14 -> 7 pools
    (112, 3, 2, 0, 56), (56, 3, 2, 0, 28), (28, 3, 2, 0, 14), (14, 2, 2, 0, 7), (7, 3, 2, 0, 3),
    (5, 2, 2, 1, 3),  # a window starting in the right padding only is dropped
])
def test_ceil_mode_pooling(n, f, s, p, expected):
    m = cnndsl.compile_text(f"input {n}x{n}x1\npool f={f} s={s} p={p} ceil=true")
    assert m.layers[0].shape == (expected, expected, 1)


def test_notes_padding_example():
    # 6x6 image, 3x3 filter: 4x4 without padding; p=1 keeps 6x6 (n + 2p - f + 1)
    assert shape_of("input 6x6x1\nconv f=3 n=1") == (4, 4, 1)
    assert shape_of("input 6x6x1\nconv f=3 p=1 n=1") == (6, 6, 1)


def test_notes_strided_convolution_example():
    # 7x7 input, 3x3 filter, stride 2: floor((7 + 0 - 3)/2) + 1 = 3
    assert shape_of("input 7x7x3\nconv f=3 s=2 n=1") == (3, 3, 1)


def test_notes_simple_convnet():
    # 39x39x3 -> 37x37x10 -> 17x17x20 -> 7x7x40 = 1960 features (reference README, corrected figures)
    m = cnndsl.compile_text(
        "input 39x39x3\nconv f=3 s=1 n=10\nconv f=5 s=2 n=20\nconv f=5 s=2 n=40\nflatten"
    )
    assert [r.shape for r in m.layers] == [(37, 37, 10), (17, 17, 20), (7, 7, 40), (1960,)]


def test_notes_one_layer_parameter_count():
    # the notes: 10 filters of 3x3x3 in one layer have (27 + 1) * 10 = 280 parameters, whatever the input size
    for n in (32, 64, 1000):
        assert cnndsl.compile_text(f"input {n}x{n}x3\nconv f=3 n=10").totals.params == 280


def test_notes_mobilenet_costs():
    # reference README: 6x6x3 input, 3x3 filters, 5 output channels, 4x4 output:
    # normal conv 3*3*3 * 4*4 * 5 = 2160; depthwise 3*3 * 4*4 * 3 = 432; pointwise 1*1*3 * 4*4 * 5 = 240
    normal = cnndsl.compile_text("input 6x6x3\nconv f=3 n=5")
    dw = cnndsl.compile_text("input 6x6x3\ndwconv f=3 -> conv f=1 n=5")
    sep = cnndsl.compile_text("input 6x6x3\nsepconv f=3 n=5")
    assert normal.totals.macs == 2160
    assert [r.macs for r in dw.layers] == [432, 240]
    assert sep.totals.macs == 672 == 432 + 240
    # the ratio depthwise-separable / normal is 1/n_c' + 1/f^2
    assert sep.totals.macs / normal.totals.macs == pytest.approx(1 / 5 + 1 / 9)


def test_one_by_one_convolution_shrinks_channels():
    # the notes' 1x1 convolution: 28x28x192 -> 32 filters of 1x1x192 -> 28x28x32
    m = cnndsl.compile_text("input 28x28x192\nconv f=1 n=32 act=relu")
    assert m.layers[0].shape == (28, 28, 32)
    assert m.layers[0].macs == 28 * 28 * 32 * 192


FIGURES = [(kind, i, fig) for kind, d in KINDS.items() for i, fig in enumerate(d.figures)]


@pytest.mark.parametrize("kind,i,fig", FIGURES, ids=[f"{k}-{i}" for k, i, _ in FIGURES])
def test_layer_kind_numbers(kind, i, fig):
    """Each kind's hand-checked figures (tests/kinds.py, with how each was worked out)."""
    m = cnndsl.compile_text(fig.spec)
    assert kind in {r.op for r in m.layers}, f"the figure for `{kind}` does not use it"
    got = (m.totals.params, m.totals.macs, m.layers[-1].shape)
    assert got == (fig.params, fig.macs, fig.shape), fig.how


POINTS = [(kind, d.points) for kind, d in KINDS.items() if d.points]


@pytest.mark.parametrize("kind,points", POINTS, ids=[k for k, _ in POINTS])
def test_activation_values(kind, points):
    """Hand-checked values of each activation, on a vector input, through the ONNX export and onnxruntime."""
    xs, want = points
    m = cnndsl.compile_text(f"input {len(xs)}\n{kind}")
    s = ort.InferenceSession(ob.to_onnx(m).to_bytes(), providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"input": np.array([xs], np.float32)})
    np.testing.assert_allclose(y[0], want, rtol=1e-5, atol=1e-6, err_msg=f"`{kind}` of {xs}")


def test_batch_norm_statistics_are_non_trainable():
    # Keras reports BatchNormalization(64) as 128 trainable + 128 non-trainable parameters
    t = cnndsl.compile_text("input 56x56x64\nbn").totals
    assert (t.trainable_params, t.non_trainable_params) == (128, 128)


def test_fc_flattens_a_volume_implicitly():
    # the notes flatten 5x5x16 = 400 before FC3 of LeNet-5: 400*120 + 120 = 48120
    m = cnndsl.compile_text("input 5x5x16\nfc 120")
    assert m.layers[0].params == 48120


def test_totals_are_consistent():
    m = cnndsl.compile_text("input 32x32x3\nconv f=3 n=8 bn=true -> relu -> fc 10")
    t = m.totals
    assert t.params == t.trainable_params + t.non_trainable_params == sum(r.params for r in m.layers)
    assert t.flops == 2 * t.macs
    assert t.weight_bytes == 4 * t.params
    assert t.activation_bytes == 4 * (32 * 32 * 3 + 2 * 30 * 30 * 8 + 10)
