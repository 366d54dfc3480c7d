"""How far the generated PyTorch module and onnxruntime are from each other, and from the module in float64.

    python benchmarks/pytorch_exactness.py SPEC [--size N] [--bn default|calibrated] [--batch 1]

Compiles the spec (at N x N when given), generates its module and its ONNX export with the same weights
(cnndsl's defaults: He uniform, batch norm statistics 0 and 1; `--bn calibrated`: the statistics of the batch
itself, as training leaves them, so that activations stay normalised), runs one random batch through float32
PyTorch, onnxruntime and the module in float64 (onnxruntime has no float64 convolution), and prints the three
distances relative to the largest output. Where both float32 results are as far from float64 as from each
other, the difference is float32 rounding amplified by the network, not a difference in what they compute.
Needs torch. docs/testing.md ("Exactness at full size") has the figures for EfficientNet-B7 at 600x600.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--size", type=int)
    ap.add_argument("--bn", choices=("default", "calibrated"), default="default")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args(argv)
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    import cnndsl
    from cnndsl.backends import onnx as ob
    from cnndsl.backends.pytorch import to_pytorch

    torch.set_num_threads(1)
    model = cnndsl.compile_file(args.spec)
    if args.size:
        model = cnndsl.compile_file(args.spec, (args.size, args.size, model.input_shape[2]))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "generated_model.py"
        path.write_text(to_pytorch(model))
        spec = importlib.util.spec_from_file_location("generated_model", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    net = mod.Model()
    ex = ob.to_onnx(model, seed=1)
    net.load_state_dict({e.name: torch.from_numpy(a) for e, a in ex.values() if e.weight.fixed is None})
    x = np.random.default_rng(0).standard_normal(ob._nchw(model.input_shape, args.batch)).astype(np.float32)
    data = ex.to_bytes()
    if args.bn == "calibrated":
        if args.batch < 2:
            ap.error("--bn calibrated takes the statistics of the batch: give --batch 2 or more")
        sys.path.insert(0, str(ROOT / "tests"))
        from test_pytorch import calibrate  # the zoo test's own calibration: one definition

        calibrate(net, torch.from_numpy(x))
        stats = {k: v.numpy() for k, v in net.state_dict().items() if k.endswith((".mean", ".var"))}
        proto = onnx.load_from_string(data)
        for t in proto.graph.initializer:
            if t.name in stats:
                t.CopyFrom(onnx.numpy_helper.from_array(stats[t.name], t.name))
        data = proto.SerializeToString()
    net.eval()
    t = time.perf_counter()
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        got = net(torch.from_numpy(x))
        got = (got[0] if isinstance(got, tuple) else got).numpy()
        exact = net.double()(torch.from_numpy(x).double())
        exact = (exact[0] if isinstance(exact, tuple) else exact).numpy()
    scale = float(np.abs(exact).max()) or 1.0
    dist = lambda a, b: float(np.abs(a - b).max()) / scale  # noqa: E731
    h, w = model.input_shape[:2]
    print(f"{model.name} at {h}x{w}, batch {args.batch}, batch norm {args.bn}: largest output {scale:.4g}; "
          f"relative to it: PyTorch float32 - onnxruntime {dist(got, want):.3g}, PyTorch float32 - float64 "
          f"{dist(got, exact):.3g}, onnxruntime - PyTorch float64 {dist(want, exact):.3g}; top class "
          f"{int(got.reshape(len(got), -1)[0].argmax())} / {int(want.reshape(len(want), -1)[0].argmax())} / "
          f"{int(exact.reshape(len(exact), -1)[0].argmax())} ({time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
