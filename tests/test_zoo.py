"""The model zoo (specs/*.cnn): every total checked against an independent reference, and the layer-by-layer
shapes of LeNet-5, AlexNet and ResNet-50."""

from __future__ import annotations

import cnndsl


# --- regressions found while writing the zoo -----------------------------------------------------


def test_a_named_value_that_the_next_line_continues_from_is_used():
    # `stage1 = ...` followed by a line that continues from it was reported as unused (and "left out")
    m = cnndsl.compile_text("input 8x8x3\nstage1 = conv f=3 n=4 -> relu\nstage2 = conv f=3 n=8\ngap -> fc 2")
    assert m.warnings == []
    assert [r.name for r in m.layers] == ["stage1.conv1", "stage1.relu1", "stage2", "gap1", "fc1"]


def test_punctuation_inside_a_comment_is_not_code():
    # a whole-line comment with `)` after a statement was lexed as the `)` terminal: "unexpected `)`"
    text = "input 8x8x3\nconv f=3 n=4\n# a (b), c | d -> e }\nconv f=3 n=4  # f(x) -> y\n-> relu\n"
    m = cnndsl.compile_text(text)
    assert [r.name for r in m.layers] == ["conv1", "conv2", "relu1"]
