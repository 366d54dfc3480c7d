"""The wheel ships what a user needs outside the source tree: the grammar and the block library."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the wheel and install it, without dependencies, into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{build.stderr[-3000:]}")
    (wheel,) = (tmp / "dist").glob("cnndsl-*.whl")
    target = tmp / "site"
    inst = subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    return target


def test_installed_wheel_finds_its_grammar_and_blocks(installed, tmp_path):
    lib = sorted(p.name for p in (ROOT / "cnndsl" / "blocks").glob("*.cnn"))
    script = (
        "import cnndsl, cnndsl.syntax as s, cnndsl.ir as ir, sys\n"
        f"assert cnndsl.__file__.startswith({str(installed)!r}), cnndsl.__file__\n"
        f"assert str(s.grammar_path()).startswith({str(installed)!r}), s.grammar_path()\n"
        "print(sorted(p.name for p in ir.LIB_DIR.glob('*.cnn')))\n"
        "m = cnndsl.compile_text('input 32x32x3\\nconv f=5 s=1 n=6 -> pool f=2 s=2 -> fc 120')\n"
        "print(m.totals.params)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    listed, params = r.stdout.splitlines()
    assert listed == str(lib)
    assert params == "141696"
