"""Shared fixtures: the repository layout and a runner for the real `cnndsl` command."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> Run:
    """Run `python -m cnndsl ARGS` in a fresh process, as a user would."""
    p = subprocess.run([sys.executable, "-m", "cnndsl", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd or ROOT, timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def spec(tmp_path):
    """Write a spec to a temporary .cnn file and return its path."""

    def write(text: str, name: str = "spec.cnn") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write
