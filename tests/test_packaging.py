"""The wheel ships what a user needs outside the source tree: the grammar and the block library."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

BUILD_LOG: dict[str, str] = {}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel (verbosely, so that the backend's warnings are kept in BUILD_LOG)."""
    import shutil

    tmp = tmp_path_factory.mktemp("wheel")
    # from a copy of the sources: setuptools reuses a checkout's build/ folder, where a file deleted from the
    # package since the last build would still be shipped
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", ".hypothesis"))
    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run([*pip, "wheel", "-v", "--no-deps", "-w", str(tmp / "dist"), str(src)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{build.stderr[-3000:]}")
    BUILD_LOG["out"] = build.stdout + build.stderr
    (built,) = (tmp / "dist").glob("cnndsl-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel installed, without dependencies, into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    return target


def test_metadata_license_urls_and_no_deprecation_warning(wheel):
    import zipfile

    log = BUILD_LOG["out"]
    assert "Deprecat" not in log and "deprecat" not in log, log[log.lower().find("deprecat") - 500:][:1500]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "cnndsl/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert "Classifier: Typing :: Typed" in meta and "Project-URL: Source, https://" in meta


def test_readme_links_are_absolute():
    """The README is the package index page too, where a relative link leads nowhere."""
    import re

    source = re.search(r'^Source = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    repo = source.removeprefix("https://github.com/")
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        if link.startswith("#"):
            continue
        assert link.startswith((source + "/blob/main/", f"https://raw.githubusercontent.com/{repo}/main/")), link
        local = link.split("/main/", 1)[1].split("#", 1)[0]
        assert (ROOT / local).exists(), f"{link} names a file that is not in the repository"


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
