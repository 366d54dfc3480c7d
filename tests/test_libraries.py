"""The bundled block libraries parameterised for their families' variants: one block per family, which
adds its projection or skip only where the shape changes (`channels()` and `if`), and takes what the
variants change as arguments. Reference totals are torchvision 0.29.1's, counted as
benchmarks/zoo_reference.py counts them (trainable parameters; conv + linear MACs at batch 1)."""

from __future__ import annotations

import cnndsl

RESNET50_BODY = """
import resnet
input 224x224x3
conv f=7 s=2 p=3 n=64 bias=false bn=true act=relu
pool f=3 s=2 p=1
conv2_x = bottleneck_stage(64, 3, s=1{cfg})
conv3_x = bottleneck_stage(128, 4{cfg})
conv4_x = bottleneck_stage(256, 6{cfg})
conv5_x = bottleneck_stage(512, 3{cfg})
gap -> fc 1000
"""


def test_one_bottleneck_builds_resnet_resnext_and_wide_resnet():
    # torchvision resnet50 / resnext50_32x4d / wide_resnet50_2: trainable parameters and MACs at 224
    for cfg, trainable, macs in [("", 25_557_032, 4_089_184_256),
                                 (", g=32, w=4", 25_028_904, 4_230_479_872),
                                 (", w=128", 68_883_240, 11_398_021_120)]:
        m = cnndsl.compile_text(RESNET50_BODY.format(cfg=cfg))
        assert (m.totals.trainable_params, m.totals.macs) == (trainable, macs), cfg
    m = cnndsl.compile_text(RESNET50_BODY.format(cfg=", g=32, w=4"))
    assert m.graph.nodes["conv3_x.bottleneck2.residual1.conv2"]["attrs"]["g"] == 32


def test_projections_only_where_the_shape_changes():
    m = cnndsl.compile_text(RESNET50_BODY.format(cfg=""))
    shortcuts = sorted(r.name for r in m.layers if r.name.endswith(".shortcut"))
    # conv2_x's first block keeps 56x56 but widens 64 -> 256; the others stride
    assert shortcuts == [f"{s}.bottleneck1.residual1.shortcut" for s in ("conv2_x", "conv3_x", "conv4_x", "conv5_x")]
    m = cnndsl.compile_text("import resnet\ninput 56x56x64\nbasic_stage(64, 2, s=1) -> basic_stage(128, 2)")
    assert sorted(r.name for r in m.layers if r.name.endswith(".shortcut")) == [
        "basic_stage2.basic1.residual1.shortcut"]


MOBILENET_V3_LARGE = """
import mobilenet
input 224x224x3
let table = [   # c, e, f, s, se, act: torchvision's mobilenet_v3_large rows
  (16, 16, 3, 1, false, relu), (24, 64, 3, 2, false, relu), (24, 72, 3, 1, false, relu),
  (40, 72, 5, 2, true, relu), (40, 120, 5, 1, true, relu), (40, 120, 5, 1, true, relu),
  (80, 240, 3, 2, false, hardswish), (80, 200, 3, 1, false, hardswish), (80, 184, 3, 1, false, hardswish),
  (80, 184, 3, 1, false, hardswish), (112, 480, 3, 1, true, hardswish), (112, 672, 3, 1, true, hardswish),
  (160, 672, 5, 2, true, hardswish), (160, 960, 5, 1, true, hardswish), (160, 960, 5, 1, true, hardswish),
]
conv f=3 s=2 p=1 n=16 bias=false bn=true eps=0.001 act=hardswish
for (c, e, f, s, se, act) in table { bneck(c, e, f, s, se, act) }
conv f=1 n=960 bias=false bn=true eps=0.001 act=hardswish
gap -> fc 1280 act=hardswish -> dropout 0.2 -> fc 1000
"""


def test_mobilenet_v3_large_as_a_table():
    # torchvision mobilenet_v3_large: 5,483,032 parameters, 216,589,760 MACs (issue #11's reference)
    m = cnndsl.compile_text(MOBILENET_V3_LARGE)
    assert (m.totals.trainable_params, m.totals.macs) == (5_483_032, 216_589_760)
    g = m.graph
    # squeeze-and-excite inside MobileNet-v3: ReLU, then a hard-sigmoid gate, to make_divisible(e / 4)
    se = [n for n in g if n.endswith("squeeze_excite1.branch2.conv1")]
    assert se and all(g.nodes[n]["attrs"]["act"] == "relu" for n in se)
    assert all(g.nodes[n.replace("conv1", "conv2")]["attrs"]["act"] == "hardsigmoid" for n in se)
    assert {g.nodes[n]["attrs"]["n"] for n in se} == {24, 32, 120, 168, 240}
    # the skip only where the block keeps the shape: 10 of the 15 rows
    assert sum(1 for n, d in g.nodes(data=True) if d["role"] == "residual") == 10


def test_efficientnet_width_and_depth_scaling_as_data():
    # B0's Table 1 is a constant of the efficientnet library: a spec can loop over it and scale it itself,
    # as the library's efficientnet(width, depth) does for B1 to B7
    by_hand = cnndsl.compile_text("""
import efficientnet
import mobilenet
input 240x240x3
conv f=3 s=2 p=1 n=32 bias=false bn=true act=silu
for (t, f, c, n, s) in efficientnet_b0_stages { mb_stage(make_divisible(c * 1.0), t, f, ceil(n * 1.1), s) }
conv f=1 n=1280 bias=false bn=true act=silu
gap -> dropout 0.2 -> fc 1000
""")
    scaled = cnndsl.compile_text("import efficientnet\ninput 240x240x3\nefficientnet(1.0, 1.1) -> gap -> fc 1000")
    # torchvision efficientnet_b1: 7,794,184 parameters, 686,802,832 MACs at 240x240
    for m in (by_hand, scaled):
        assert (m.totals.trainable_params, m.totals.macs) == (7_794_184, 686_802_832)
    # B1 repeats Table 1's layers 1.1 times, rounded up: 1, 2, 2, 3, 3, 4, 1 -> 2, 3, 3, 4, 4, 5, 2 MBConv blocks
    assert sum(1 for r in scaled.layers if r.op == "dwconv") == 23


def test_vgg_batch_norm_is_an_argument():
    plain = cnndsl.compile_text("import vgg\ninput 32x32x3\nvgg_stage(64, 2)")
    bn = cnndsl.compile_text("import vgg\ninput 32x32x3\nvgg_stage(64, 2, bn=true)")
    # each conv gains batch norm's 2 x 64 trainable (and 2 x 64 running statistics) parameters
    assert bn.totals.trainable_params - plain.totals.trainable_params == 2 * 2 * 64
    assert bn.totals.non_trainable_params == 2 * 2 * 64


def test_squeeze_excite_activation_is_an_argument():
    spec = "import mobilenet\ninput 8x8x16\nsqueeze_excite(16, 4{})"
    g = cnndsl.compile_text(spec.format("")).graph
    assert g.nodes["squeeze_excite1.branch2.conv1"]["attrs"]["act"] == "silu"
    g = cnndsl.compile_text(spec.format(", act=relu")).graph
    assert g.nodes["squeeze_excite1.branch2.conv1"]["attrs"]["act"] == "relu"


def test_bneck_computes_torchvisions_mobilenet_v3_large():
    """The same function as torchvision's model: its weights (batch-norm statistics randomised, so a wrong
    epsilon or a misplaced gate shows) copied in order onto cnndsl's export, onnxruntime vs PyTorch eval."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    import torchvision

    from cnndsl.backends.onnx import to_onnx

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_large().eval()
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    tensors = [v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")]
    proto = to_onnx(cnndsl.compile_text(MOBILENET_V3_LARGE.replace("input 224x224x3", "input 96x96x3"))).to_proto()
    weights = [i for i in proto.graph.initializer if i.name.rsplit(".", 1)[-1] in ("weight", "bias", "scale", "mean",
                                                                                 "var")]
    assert len(weights) == len(tensors)
    for init, t in zip(weights, tensors, strict=True):  # torchvision's order is the spec's: expand, dw, SE, project
        a = t.numpy().astype(np.float32)
        assert a.size == int(np.prod(init.dims)), init.name
        init.CopyFrom(onnx.numpy_helper.from_array(a.reshape(init.dims), init.name))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 96, 96)).astype(np.float32)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        z = net(torch.from_numpy(x)).numpy()
    assert np.abs(y - z).max() <= 1e-4 * np.abs(z).max()
