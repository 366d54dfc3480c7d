"""Files: outputs are written atomically (a failing run never truncates an existing output, nor leaves a
temporary file), and imports resolve relative to the importing spec, whatever the working folder."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SPECS

import cnndsl
from cnndsl import cli, safeio
from cnndsl.backends import onnx as onnx_backend

OLD = b"the previous output, which a failing run must leave alone\n"


class FailingFile:
    """A file that takes `budget` bytes, then fails as a full disk does (the first bytes did get written)."""

    def __init__(self, f, budget: int):
        self.f, self.budget = f, budget

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.budget:
            self.f.write(data[: self.budget])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _folder_after(tmp_path, out) -> list[str]:
    assert out.read_bytes() == OLD
    return sorted(os.listdir(tmp_path))


@pytest.fixture
def lenet(tmp_path):
    p = tmp_path / "lenet5.cnn"
    p.write_bytes((SPECS / "lenet5.cnn").read_bytes())
    return p


def test_compile_failing_mid_write_keeps_the_old_model(tmp_path, lenet, monkeypatch, capsys):
    out = tmp_path / "net.onnx"
    out.write_bytes(OLD)
    write = onnx_backend.Exported.write
    monkeypatch.setattr(onnx_backend.Exported, "write",
                        lambda self, f, *a, **kw: write(self, FailingFile(f, 5000), *a, **kw))
    assert cli.main(["compile", "-o", str(out), str(lenet)]) == 2
    assert "No space left" in capsys.readouterr().err
    assert _folder_after(tmp_path, out) == ["lenet5.cnn", "net.onnx"]
    monkeypatch.undo()
    assert cli.main(["compile", "-o", str(out), str(lenet)]) == 0  # the same run without the failure replaces it
    assert out.read_bytes() != OLD and onnx_backend.onnx.load(str(out)).graph.name == "LeNet5"


def test_compile_failing_late_keeps_the_old_model(tmp_path, lenet, capsys):
    out = tmp_path / "net.onnx"
    out.write_bytes(OLD)
    bad = tmp_path / "w.npz"
    np.savez(bad, **{"conv1.weight": np.zeros((6, 3, 5, 5), np.float32)})  # every other weight is missing
    assert cli.main(["compile", "--weights", str(bad), "-o", str(out), str(lenet)]) == 1
    assert "does not match the network" in capsys.readouterr().err
    assert cli.main(["compile", "--max-params", "10", "-o", str(out), str(lenet)]) == 1
    lenet.write_text(lenet.read_text() + "\nconv f=99 n=1\n")  # a shape error after every layer built
    assert cli.main(["compile", "-o", str(out), str(lenet)]) == 1
    assert _folder_after(tmp_path, out) == ["lenet5.cnn", "net.onnx", "w.npz"]


@pytest.mark.parametrize("suffix", [".dot", ".svg"])
def test_render_failing_mid_write_keeps_the_old_picture(tmp_path, lenet, monkeypatch, capsys, suffix):
    if suffix == ".svg" and not shutil.which("dot"):
        pytest.skip("Graphviz's dot is not installed")
    out = tmp_path / f"net{suffix}"
    out.write_bytes(OLD)
    fdopen = os.fdopen
    monkeypatch.setattr(safeio.os, "fdopen", lambda fd, *a, **kw: FailingFile(fdopen(fd, *a, **kw), 300))
    assert cli.main(["render", "-o", str(out), str(lenet)]) == 2
    assert "No space left" in capsys.readouterr().err
    assert _folder_after(tmp_path, out) == ["lenet5.cnn", out.name]


def test_render_of_a_bad_spec_keeps_the_old_picture(tmp_path, lenet):
    out = tmp_path / "net.dot"
    out.write_bytes(OLD)
    lenet.write_text(lenet.read_text() + "\nconv f=99 n=1\n")
    assert cli.main(["render", "-o", str(out), str(lenet)]) == 1
    assert _folder_after(tmp_path, out) == ["lenet5.cnn", "net.dot"]


# --- imports ---------------------------------------------------------------------------------------


def test_imports_resolve_relative_to_the_importing_file_from_any_folder(tmp_path):
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "lib").mkdir()
    (tmp_path / "nets" / "lib" / "outer.cnn").write_text('import "inner.cnn"\nblock outer(n) { inner(n) -> relu }\n')
    (tmp_path / "nets" / "lib" / "inner.cnn").write_text("block inner(n) { conv f=1 n=n }\n")
    # a decoy beside the working folder must not be picked up
    (tmp_path / "inner.cnn").write_text("block inner(n) { conv f=3 n=n }\n")
    spec = tmp_path / "nets" / "net.cnn"
    spec.write_text('import "lib/outer.cnn"\ninput 8x8x3\nouter(4)\n')
    for cwd in (tmp_path, tmp_path / "nets" / "lib", ROOT):
        r = subprocess.run([sys.executable, "-m", "cnndsl", "check", str(spec)], capture_output=True, text=True,
                           cwd=cwd, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "8x8x4, 16 parameters" in r.stdout  # the 1x1 conv of lib/inner.cnn, not the decoy's 3x3


def test_import_cycles_name_the_whole_chain(tmp_path):
    (tmp_path / "a.cnn").write_text('import "b.cnn"\nblock a1 { relu }\n')
    (tmp_path / "b.cnn").write_text('import "sub/c.cnn"\nblock b1 { relu }\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.cnn").write_text('import "../a.cnn"\nblock c1 { relu }\n')
    net = tmp_path / "net.cnn"
    net.write_text('import "a.cnn"\ninput 8x8x3\na1\n')
    with pytest.raises(cnndsl.CompileError) as e:
        cnndsl.compile_file(net)
    (d,) = [d for d in e.value.diagnostics if d.severity == "error"]
    assert d.code == "import-cycle" and "a.cnn -> b.cnn -> c.cnn -> a.cnn" in d.message
    (tmp_path / "self.cnn").write_text('import "self.cnn"\nblock s { relu }\n')
    net.write_text('import "self.cnn"\ninput 8x8x3\ns\n')
    with pytest.raises(cnndsl.CompileError) as e:
        cnndsl.compile_file(net)
    assert [d.code for d in e.value.diagnostics] == ["import-cycle"]


@pytest.mark.parametrize("target, content", [
    ("folder.cnn", None),  # a folder named like a spec
    ("latin1.cnn", "block b { relu } # caf\xe9".encode("latin-1")),
    ("broken.cnn", b"block b { relu \n"),
    ("layers.cnn", b"input 8x8x3\nrelu\n"),  # an imported file holds only blocks, defaults and imports
])
def test_bad_imports_are_diagnostics(tmp_path, target, content):
    if content is None:
        (tmp_path / target).mkdir()
    else:
        (tmp_path / target).write_bytes(content)
    net = tmp_path / "net.cnn"
    net.write_text(f'import "{target}"\ninput 8x8x3\nrelu\n')
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", str(net)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "error[" in r.stderr
