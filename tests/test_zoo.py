"""The model zoo (specs/*.cnn): every total checked against an independent reference, and the layer-by-layer
shapes of LeNet-5, AlexNet and ResNet-50.

The references were computed with PyTorch and torchvision by benchmarks/zoo_reference.py (an optional script:
the tests themselves need no torch). Trainable parameters are torchvision's `sum(p.numel() for p in
m.parameters())`; non-trainable are the batch norm running means and variances (`running_mean` +
`running_var` buffers); MACs are conv, transposed conv and fc multiply-accumulates at batch 1 and the spec's
input size, counted by forward hooks (bias, batch norm, activations, pooling and merges excluded).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cnndsl

SPECS = Path(__file__).resolve().parent.parent / "specs"

# spec name -> (trainable parameters, non-trainable parameters, MACs)
ZOO = {
    # the notes' LeNet-5 table (shared reference README): 456 + 2,416 + 48,120 + 10,164 + 850 parameters;
    # PyTorch nn.Sequential equivalent in benchmarks/zoo_reference.py for the MACs
    "lenet5": (62_006, 0, 651_720),
    # the notes' simple conv net: hand count in the spec header, and the nn.Sequential equivalent
    "notes_convnet": (25_340, 0, 2_794_630),
    # torchvision 0.29.1 models.resnet.BasicBlock(64, 128, stride=2, downsample=conv1x1 + BatchNorm2d), 56x56x64
    "residual_block": (230_144, 768, 179_830_784),
    # GoogLeNet paper inception (3a) written as a PyTorch module (bias, ReLU, no BN), 28x28x192; paper: 128M ops
    "inception_module": (163_696, 0, 128_049_152),
    # AlexNet paper, single stream, as a PyTorch nn.Sequential at 227x227 (hand count: 62,378,344 parameters)
    "alexnet": (62_378_344, 0, 1_135_256_096),
    # torchvision 0.29.1 alexnet(), 224x224
    "alexnet_torchvision": (61_100_840, 0, 714_188_480),
    # torchvision 0.29.1 vgg16() and vgg19(), 224x224
    "vgg16": (138_357_544, 0, 15_470_264_320),
    "vgg19": (143_667_240, 0, 19_632_062_464),
    # torchvision 0.29.1 resnet18/34/50/101/152(), 224x224
    "resnet18": (11_689_512, 9_600, 1_814_073_344),
    "resnet34": (21_797_672, 17_024, 3_663_761_408),
    "resnet50": (25_557_032, 53_120, 4_089_184_256),
    "resnet101": (44_549_160, 105_344, 7_801_405_440),
    "resnet152": (60_192_808, 151_424, 11_513_626_624),
    # torchvision 0.29.1 googlenet(aux_logits=False), 224x224
    "googlenet": (6_624_904, 14_560, 1_498_376_192),
    # torchvision 0.29.1 inception_v3(aux_logits=False), 299x299
    "inception_v3": (23_834_568, 34_432, 5_713_216_096),
    # MobileNet-v1 paper Table 1 as a PyTorch nn.Sequential (same totals as Keras MobileNet(alpha=1.0)), 224x224
    "mobilenet_v1": (4_231_976, 21_888, 568_740_352),
    # torchvision 0.29.1 mobilenet_v2(), 224x224
    "mobilenet_v2": (3_504_872, 34_112, 300_774_272),
    # torchvision 0.29.1 squeezenet1_0() and squeezenet1_1(), 224x224
    "squeezenet1_0": (1_248_424, 0, 818_924_576),
    "squeezenet1_1": (1_235_496, 0, 349_151_936),
    # torchvision 0.29.1 densenet121(), 224x224
    "densenet121": (7_978_856, 83_648, 2_834_161_664),
    # torchvision 0.29.1 efficientnet_b0(), 224x224
    "efficientnet_b0": (5_288_548, 42_016, 385_814_752),
    # U-Net paper, padded, 1 channel in, 2 classes, as a PyTorch module at 512x512 (transposed convs counted per
    # input pixel: in.numel() * out_channels * 2 * 2)
    "unet": (31_030_658, 0, 192_384_335_872),
}


@pytest.fixture(scope="module")
def zoo():
    """Each spec compiled once for the module."""
    cache: dict[str, cnndsl.Model] = {}

    def get(name: str) -> cnndsl.Model:
        if name not in cache:
            cache[name] = cnndsl.compile_file(SPECS / f"{name}.cnn")
        return cache[name]

    return get


def test_the_zoo_is_in_specs():
    assert set(ZOO) <= {p.stem for p in SPECS.glob("*.cnn")}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_totals_match_the_reference(zoo, name):
    m = zoo(name)
    trainable, non_trainable, macs = ZOO[name]
    assert (m.totals.trainable_params, m.totals.non_trainable_params, m.totals.macs) == (trainable, non_trainable, macs)
    assert m.totals.params == trainable + non_trainable
    assert m.warnings == []


@pytest.mark.parametrize("name", sorted(set(ZOO) - {"lenet5"}))
def test_header_states_the_reference_totals(name):
    header = "".join(line for line in (SPECS / f"{name}.cnn").read_text().splitlines(True) if line.startswith("#"))
    trainable, _, macs = ZOO[name]
    assert f"{trainable:,}" in header and f"{macs:,}" in header


def rows(m: cnndsl.Model) -> list[tuple]:
    return [(r.name, r.shape, r.size, r.params) for r in m.layers]


def test_lenet5_layer_by_layer(zoo):
    # the notes' LeNet-5 table (with the transcription errors corrected in the shared reference README):
    # activation shape, activation size, parameters
    assert rows(zoo("lenet5")) == [
        ("conv1", (28, 28, 6), 4704, 456),        # CONV1: (5*5*3 + 1) * 6
        ("pool1", (14, 14, 6), 1176, 0),          # POOL1
        ("conv2", (10, 10, 16), 1600, 2416),      # CONV2: (5*5*6 + 1) * 16
        ("pool2", (5, 5, 16), 400, 0),            # POOL2
        ("fc1", (120,), 120, 48120),              # FC3: 400 * 120 + 120
        ("fc2", (84,), 84, 10164),                # FC4: 120 * 84 + 84
        ("fc3", (10,), 10, 850),                  # FC5: 84 * 10 + 10
        ("softmax1", (10,), 10, 0),
    ]


def test_alexnet_layer_by_layer(zoo):
    # shapes: the paper's Figure 2 (one stream) and the notes; parameters: (f*f*C_in + 1) * n, (in + 1) * out
    m = zoo("alexnet")
    assert [(r.name, r.shape, r.params) for r in m.layers] == [
        ("conv1", (55, 55, 96), 34_944),          # (11*11*3 + 1) * 96
        ("lrn1", (55, 55, 96), 0),
        ("pool1", (27, 27, 96), 0),
        ("conv2", (27, 27, 256), 614_656),        # (5*5*96 + 1) * 256
        ("lrn2", (27, 27, 256), 0),
        ("pool2", (13, 13, 256), 0),
        ("conv3", (13, 13, 384), 885_120),        # (3*3*256 + 1) * 384
        ("conv4", (13, 13, 384), 1_327_488),      # (3*3*384 + 1) * 384
        ("conv5", (13, 13, 256), 884_992),        # (3*3*384 + 1) * 256
        ("pool3", (6, 6, 256), 0),                # 6*6*256 = 9216 features
        ("fc1", (4096,), 37_752_832),             # 9216 * 4096 + 4096
        ("dropout1", (4096,), 0),
        ("fc2", (4096,), 16_781_312),             # 4096 * 4096 + 4096
        ("dropout2", (4096,), 0),
        ("fc3", (1000,), 4_097_000),              # 4096 * 1000 + 1000
        ("softmax1", (1000,), 0),
    ]
    assert m.layer("conv1").macs == 55 * 55 * 96 * 11 * 11 * 3


# ResNet-50, torchvision 0.29.1 resnet50() at 224x224: the output shape (H, W, C) and the trainable parameters
# of the stem and of every bottleneck module (`layerN.M`, forward hooks and sum of parameter numel).
RESNET50_BLOCKS = [
    ("conv1", (112, 112, 64), 9_408 + 128),   # conv1 + bn1
    ("pool1", (56, 56, 64), 0),
    # each stage's first bottleneck (the projection) is bottleneck1
    *[(f"conv2_x.{b}", (56, 56, 256), p) for b, p in
      [("bottleneck1", 75_008), ("bottleneck2", 70_400), ("bottleneck3", 70_400)]],
    *[(f"conv3_x.{b}", (28, 28, 512), p) for b, p in
      [("bottleneck1", 379_392)] + [(f"bottleneck{i}", 280_064) for i in (2, 3, 4)]],
    *[(f"conv4_x.{b}", (14, 14, 1024), p) for b, p in
      [("bottleneck1", 1_512_448)] + [(f"bottleneck{i}", 1_117_184) for i in range(2, 7)]],
    *[(f"conv5_x.{b}", (7, 7, 2048), p) for b, p in
      [("bottleneck1", 6_039_552)] + [(f"bottleneck{i}", 4_462_592) for i in (2, 3)]],
    ("gap1", (1, 1, 2048), 0),
    ("fc1", (1000,), 2_049_000),
]


def test_resnet50_block_by_block(zoo):
    m = zoo("resnet50")
    got = []
    for name, _, _ in RESNET50_BLOCKS:
        inside = [r for r in m.layers if r.name == name or r.name.startswith(name + ".")]
        out = inside[-1]  # a block's last layer (its ReLU) is its output
        got.append((name, out.shape, sum(r.trainable for r in inside)))
    assert got == RESNET50_BLOCKS
    # the stage boundaries: every first block strides on its 3x3 conv and projects its shortcut
    for stage, s, hw, c in [("conv2_x", 1, 56, 256), ("conv3_x", 2, 28, 512), ("conv4_x", 2, 14, 1024),
                            ("conv5_x", 2, 7, 2048)]:
        body = f"{stage}.bottleneck1.residual1"
        assert m.graph.nodes[f"{body}.conv2"]["attrs"]["s"] == (s, s)
        assert m.layer(f"{body}.shortcut").shape == (hw, hw, c)
        assert m.layer(f"{body}.shortcut").label == f"conv 1x1, s={s}, n={c}, bn"


# ResNet-50 layer by layer: every conv (with the batch norm after it) and the fc, in forward order, as
# torchvision 0.29.1 resnet50() computes them at 224x224 (forward hooks on Conv2d/Linear; trainable
# parameters = conv weight + its BatchNorm2d's weight and bias; fc weight + bias). Torch names for reading.
RESNET50_LAYERS = [
    ("conv1", (112, 112, 64), 9536), ("layer1.0.conv1", (56, 56, 64), 4224), ("layer1.0.conv2", (56, 56, 64), 36992),
    ("layer1.0.conv3", (56, 56, 256), 16896), ("layer1.0.downsample.0", (56, 56, 256), 16896),
    ("layer1.1.conv1", (56, 56, 64), 16512), ("layer1.1.conv2", (56, 56, 64), 36992),
    ("layer1.1.conv3", (56, 56, 256), 16896), ("layer1.2.conv1", (56, 56, 64), 16512),
    ("layer1.2.conv2", (56, 56, 64), 36992), ("layer1.2.conv3", (56, 56, 256), 16896),
    ("layer2.0.conv1", (56, 56, 128), 33024), ("layer2.0.conv2", (28, 28, 128), 147712),
    ("layer2.0.conv3", (28, 28, 512), 66560), ("layer2.0.downsample.0", (28, 28, 512), 132096),
    ("layer2.1.conv1", (28, 28, 128), 65792), ("layer2.1.conv2", (28, 28, 128), 147712),
    ("layer2.1.conv3", (28, 28, 512), 66560), ("layer2.2.conv1", (28, 28, 128), 65792),
    ("layer2.2.conv2", (28, 28, 128), 147712), ("layer2.2.conv3", (28, 28, 512), 66560),
    ("layer2.3.conv1", (28, 28, 128), 65792), ("layer2.3.conv2", (28, 28, 128), 147712),
    ("layer2.3.conv3", (28, 28, 512), 66560), ("layer3.0.conv1", (28, 28, 256), 131584),
    ("layer3.0.conv2", (14, 14, 256), 590336), ("layer3.0.conv3", (14, 14, 1024), 264192),
    ("layer3.0.downsample.0", (14, 14, 1024), 526336), ("layer3.1.conv1", (14, 14, 256), 262656),
    ("layer3.1.conv2", (14, 14, 256), 590336), ("layer3.1.conv3", (14, 14, 1024), 264192),
    ("layer3.2.conv1", (14, 14, 256), 262656), ("layer3.2.conv2", (14, 14, 256), 590336),
    ("layer3.2.conv3", (14, 14, 1024), 264192), ("layer3.3.conv1", (14, 14, 256), 262656),
    ("layer3.3.conv2", (14, 14, 256), 590336), ("layer3.3.conv3", (14, 14, 1024), 264192),
    ("layer3.4.conv1", (14, 14, 256), 262656), ("layer3.4.conv2", (14, 14, 256), 590336),
    ("layer3.4.conv3", (14, 14, 1024), 264192), ("layer3.5.conv1", (14, 14, 256), 262656),
    ("layer3.5.conv2", (14, 14, 256), 590336), ("layer3.5.conv3", (14, 14, 1024), 264192),
    ("layer4.0.conv1", (14, 14, 512), 525312), ("layer4.0.conv2", (7, 7, 512), 2360320),
    ("layer4.0.conv3", (7, 7, 2048), 1052672), ("layer4.0.downsample.0", (7, 7, 2048), 2101248),
    ("layer4.1.conv1", (7, 7, 512), 1049600), ("layer4.1.conv2", (7, 7, 512), 2360320),
    ("layer4.1.conv3", (7, 7, 2048), 1052672), ("layer4.2.conv1", (7, 7, 512), 1049600),
    ("layer4.2.conv2", (7, 7, 512), 2360320), ("layer4.2.conv3", (7, 7, 2048), 1052672), ("fc", (1000,), 2049000),
]


def test_resnet50_layer_by_layer(zoo):
    m = zoo("resnet50")
    rows = [r for r in m.layers if r.op in ("conv", "fc")]
    assert len(rows) == len(RESNET50_LAYERS) == 54
    for r, (torch_name, shape, trainable) in zip(rows, RESNET50_LAYERS, strict=True):
        assert (r.shape, r.trainable) == (shape, trainable), f"{r.name} (torchvision {torch_name})"


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


def test_docs_zoo_table_is_up_to_date():
    # docs/zoo.md's table is generated from the specs by docs/gen_zoo.py (`./dev zoo-docs`)
    import importlib.util

    path = SPECS.parent / "docs" / "gen_zoo.py"
    spec = importlib.util.spec_from_file_location("gen_zoo", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    doc = gen.DOC.read_text(encoding="utf-8")
    assert gen.render(doc) == doc, "run `./dev zoo-docs`"
    assert set(gen.ZOO) == set(ZOO)
