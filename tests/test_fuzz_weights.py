"""Fuzzing `weights --from` and `compile --weights` with hostile weight files: mutated PyTorch state dicts,
safetensors files and .npz archives, byte by byte and tensor by tensor. Every command must end with exit 0, 1 or
2 and a message, never a traceback (exit 3). CNNDSL_FULL=1 draws many more cases.
"""

from __future__ import annotations

import io
import os
import random
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SPECS
from safetensors.torch import save_file

import cnndsl
from cnndsl.backends import onnx as ob
from cnndsl.cli import main

FULL = os.environ.get("CNNDSL_FULL") == "1"
N = 400 if FULL else 24
LENET = SPECS / "lenet5.cnn"


def lenet_state_dict(names: str = "torch") -> dict[str, torch.Tensor]:
    model = cnndsl.compile_file(LENET)
    g = torch.Generator().manual_seed(0)
    sd = {e.name: torch.randn(e.weight.shape, generator=g) for e in ob.expected_weights(model)}
    if names == "torch":  # PyTorch's own names for the same tensors (an nn.Sequential)
        sd = {f"{i // 2}.{k.rsplit('.', 1)[1]}": v for i, (k, v) in enumerate(sd.items())}
    return sd


def run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def assert_handled(path: Path, tmp_path: Path) -> None:
    for argv in (("weights", LENET, "--from", path, "-o", tmp_path / "w.npz"),
                 ("compile", LENET, "--weights", path, "-o", tmp_path / "m.onnx")):
        code, err = run(*argv)
        assert code in (0, 1, 2) and "internal error" not in err, f"{argv[0]} on {path.name}: exit {code}\n{err}"


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    how = rng.choice(["flip", "truncate", "insert", "delete", "zero-run", "header"])
    i = rng.randrange(len(b))
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif how == "truncate":
        del b[i:]
    elif how == "insert":
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif how == "delete":
        del b[i:i + rng.randint(1, 64)]
    elif how == "zero-run":
        b[i:i + 32] = bytes(min(32, len(b) - i))
    else:  # the first bytes: lengths, magic numbers, JSON headers
        j = rng.randrange(min(len(b), 200))
        b[j] = rng.randrange(256)
    return bytes(b)


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("originals")
    torch.save(lenet_state_dict(), d / "w.pth")
    save_file(lenet_state_dict("cnndsl"), d / "w.safetensors")
    np.savez(d / "w.npz", **{k: v.numpy() for k, v in lenet_state_dict().items()})
    return {p.suffix: p.read_bytes() for p in d.iterdir()}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".npz"])
def test_mutated_weight_files(originals, suffix, tmp_path):
    rng = random.Random(f"{suffix}{0 if not FULL else random.random()}")
    for k in range(N):
        path = tmp_path / f"m{k}{suffix}"
        path.write_bytes(mutate(originals[suffix], rng))
        assert_handled(path, tmp_path)


def _tensor_mutations() -> list[tuple[str, object]]:
    sd = lenet_state_dict()
    keys = list(sd)
    bigger = dict(sd)
    bigger["3.weight"] = torch.zeros(121, 400)
    swapped = dict(sd)
    swapped[keys[0]], swapped[keys[2]] = sd[keys[2]], sd[keys[0]]
    return [
        ("a tensor missing", {k: v for k, v in sd.items() if k != "5.weight"}),
        ("an extra tensor", {**sd, "extra.weight": torch.zeros(3)}),
        ("a wrong shape", bigger),
        ("two swapped", swapped),
        ("integers", {k: v.to(torch.int64) for k, v in sd.items()}),
        ("half precision", {k: v.half() for k, v in sd.items()}),
        ("a checkpoint wrapping it", {"epoch": 3, "state_dict": sd, "optimizer": {"lr": 0.1}}),
        ("an empty dict", {}),
        ("a list of tensors", list(sd.values())),
        ("a scalar", torch.tensor(3.0)),
        ("nested dicts of numbers", {"a": {"b": 1}}),
        ("num_batches_tracked only", {"bn.num_batches_tracked": torch.tensor(5)}),
        ("zero-size tensors", {k: torch.zeros(0) for k in sd}),
    ]


@pytest.mark.parametrize("what,obj", _tensor_mutations(), ids=[w for w, _ in _tensor_mutations()])
def test_mutated_state_dicts(what, obj, tmp_path):
    torch.save(obj, tmp_path / "w.pth")
    assert_handled(tmp_path / "w.pth", tmp_path)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        save_file({k: v.contiguous() for k, v in obj.items()}, tmp_path / "w.safetensors")
        assert_handled(tmp_path / "w.safetensors", tmp_path)
