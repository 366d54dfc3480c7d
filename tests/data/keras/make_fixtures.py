"""Make the Keras fixtures of tests/test_import_keras.py: small Keras models exported to ONNX by tf2onnx.

Run it in a virtual environment of its own, outside the repository (TensorFlow is no dependency of cnndsl
and its tests; only the small files this writes are: `NAME.onnx`, and `NAME.keras_out.npz` with an input
batch, N x H x W x C, and Keras' own output for it):

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0     # Keras 3.15 comes with it
    /tmp/tfenv/bin/python tests/data/keras/make_fixtures.py

Every weight is random, batch-norm statistics included (moving means and variances far from 0 and 1), so a
wrong epsilon, a swapped axis or a lost layer shows in the outputs. Each model is exported with
`tf2onnx.convert.from_keras` at opset 13 (`inputs_as_nchw` for one of them), the ops tf2onnx writes
for Keras: an N x H x W x C input and a Transpose to NCHW, Transposes around the ops it keeps
channels-last, Dense as MatMul + Add, ReLU6 as Clip, `padding='same'` with odd totals as asymmetric pads,
ZeroPadding2D as Pad. The outputs are deterministic for a given seed; each file is a few hundred KB at most.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
from keras import layers as L  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def randomise(model: keras.Model, seed: int) -> keras.Model:
    """Every weight random; batch norm's moving mean around 0.5 and variance in [0.5, 2.5]."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = ws
            ws = [rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                  rng.normal(0.5, 0.3, mean.shape), rng.uniform(0.5, 2.5, var.shape)]
        else:
            ws = [rng.normal(0, 1 / np.sqrt(max(1, np.prod(w.shape[:-1]))), w.shape) if w.ndim > 1
                  else rng.normal(0, 0.1, w.shape) for w in ws]
        layer.set_weights([w.astype(np.float32) for w in ws])
    return model


def small_cnn() -> keras.Model:
    """One of every layer the importer should read, in a 32 x 32 x 3 network."""
    inp = keras.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, padding="valid", name="stem")(inp)                        # 30
    x = L.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    x = L.Conv2D(12, 3, strides=2, padding="same", use_bias=False, name="down")(x)  # 15, pads 0/1
    x = L.BatchNormalization(name="down_bn")(x)
    x = L.ReLU(6.0, name="down_relu6")(x)
    # a residual block: depthwise + pointwise, added to its input
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = L.BatchNormalization(name="dw_bn")(y)
    y = L.Activation("swish", name="dw_swish")(y)
    y = L.Conv2D(12, 1, name="pw")(y)
    x = L.Add(name="res_add")([x, y])
    # two branches joined on the channels
    a = L.SeparableConv2D(8, 3, padding="same", name="sep")(x)
    a = L.LeakyReLU(negative_slope=0.1, name="sep_leaky")(a)
    b = L.MaxPooling2D(3, strides=1, padding="same", name="branch_pool")(x)
    b = L.Conv2D(6, 1, activation="relu", name="branch_conv")(b)
    x = L.Concatenate(axis=-1, name="cat")([a, b])                                  # 15 x 15 x 14
    x = L.ZeroPadding2D(((0, 1), (0, 1)), name="zpad")(x)                            # 16
    x = L.DepthwiseConv2D(3, strides=2, padding="valid", name="dw_down")(x)          # 7
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = L.AveragePooling2D(3, strides=1, padding="valid", name="avg_valid")(x)       # 5
    x = L.MaxPooling2D(2, strides=2, padding="same", name="max_same")(x)             # 3, pads 0/1
    f = L.Flatten(name="flatten")(x)                                                 # channels-last order
    f = L.Dense(32, activation="relu", name="fc1")(f)
    f = L.Dropout(0.5, name="drop")(f)
    f = L.Dense(10, name="fc2")(f)
    out = L.Softmax(name="softmax")(f)
    return keras.Model(inp, out, name="keras_small")


def se_gap() -> keras.Model:
    """Global average pooling feeding a squeeze-and-excitation gate (Mul over channels-last tensors),
    average pools with padding='same', then a second pooling head: the ReduceMean patterns tf2onnx writes for
    keepdims pooling."""
    inp = keras.Input((24, 24, 3), name="image")
    x = L.Conv2D(16, 3, strides=2, padding="same", name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu")(x)
    s = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(16, 1, activation="sigmoid", name="se_expand")(s)
    x = L.Multiply(name="se_mul")([x, s])
    x = L.Conv2D(24, 3, padding="same", name="conv2")(x)
    # 'same' average pools leave the padding out of the average: p=1 at stride 1; bottom/right only at stride 2
    x = L.AveragePooling2D(3, strides=1, padding="same", name="avg_same")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="avg")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, activation="softmax", name="head")(x)
    return keras.Model(inp, x, name="keras_se")


def dense_per_position() -> keras.Model:
    """Preprocessing layers (Rescaling, Normalization), a Dense on a 4-D tensor (a Linear at every position,
    as MLP-Mixer-like heads write it), then a channels-last Flatten read by a Dense."""
    inp = keras.Input((8, 8, 3), name="image")
    x = L.Rescaling(1 / 127.5, offset=-1, name="rescale")(inp)  # preprocessing inside the model
    x = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 2.0, 1.5], name="normalize")(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = L.Dense(6, name="per_position")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(5, name="head")(x)
    return keras.Model(inp, x, name="keras_dense4d")


def mobilenet_v2() -> keras.Model:
    return keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None, classes=10)


MODELS = {
    "keras_small": (small_cnn, {}),
    "keras_small_nchw": (small_cnn, {"inputs_as_nchw": ["image"]}),
    "keras_se": (se_gap, {}),
    # tf2onnx's optimisers off: the raw conversion, a Transpose pair around every conv and pool, BatchNormalization
    # as it is, Concatenate on axis 3, the per-position ops channels-last
    "keras_small_raw": (small_cnn, {"optimizers": {}}),
    "keras_se_raw": (se_gap, {"optimizers": {}}),  # pooling as ReduceMean over axes [1, 2], the gate's Mul on NHWC
    "keras_dense4d": (dense_per_position, {}),
    "mobilenetv2_035_96": (mobilenet_v2, {}),
}


def export(name: str, make, kw: dict, seed: int) -> str:
    keras.utils.set_random_seed(seed)
    model = randomise(make(), seed)
    shape = (None, *model.inputs[0].shape[1:])
    spec = (tf.TensorSpec(shape, tf.float32, name=model.inputs[0].name),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, **kw)
    path = os.path.join(HERE, f"{name}.onnx")
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    # Keras' own answer on a small batch, kept beside the model: the tests check the import against it too
    batch = 2 if np.prod(shape[1:]) <= 32 * 32 * 3 else 1
    x = np.random.default_rng(seed).standard_normal((batch, *shape[1:])).astype(np.float32)
    y = model(x, training=False).numpy()
    np.savez_compressed(os.path.join(HERE, f"{name}.keras_out.npz"), x=x, y=y)
    print(f"{name}: {os.path.getsize(path):,} bytes, {len(proto.graph.node)} nodes, "
          f"{model.count_params():,} Keras parameters")
    return path


def main(argv: list[str]) -> int:
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, tf2onnx {tf2onnx.__version__}")
    for k, (name, (make, kw)) in enumerate(MODELS.items()):
        if not argv or name in argv:
            export(name, make, kw, seed=100 + k)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
