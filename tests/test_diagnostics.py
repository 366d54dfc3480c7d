"""Error text is part of the interface: every bad spec in tests/errors/ must produce exactly its `.err`.

Each `.err` holds the stderr of `cnndsl check tests/errors/NAME.cnn` (run from the repository root).
After an intended change of wording, regenerate with CNNDSL_UPDATE_GOLDENS=1 and review the diff.
"""

from __future__ import annotations

import os
import re

import pytest
from conftest import ROOT

from cnndsl import cli

ERRORS = sorted((ROOT / "tests" / "errors").glob("*.cnn"))


@pytest.mark.parametrize("path", ERRORS, ids=[p.stem for p in ERRORS])
def test_golden_diagnostic(path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rel = path.relative_to(ROOT).as_posix()
    code = cli.main(["check", rel])
    err = capsys.readouterr().err
    golden = path.with_suffix(".err")
    if os.environ.get("CNNDSL_UPDATE_GOLDENS"):
        golden.write_text(err)
    assert code == 1
    assert err == golden.read_text()


@pytest.mark.parametrize("path", ERRORS, ids=[p.stem for p in ERRORS])
def test_header_points_into_the_file(path, capsys, monkeypatch):
    """Every error header is `path:line:col: error[code]: message` with a position inside the spec."""
    monkeypatch.chdir(ROOT)
    rel = path.relative_to(ROOT).as_posix()
    cli.main(["--format", "concise", "check", rel])
    lines = [x for x in capsys.readouterr().err.splitlines() if ": error[" in x]
    assert lines, "no error reported"
    text = path.read_text().splitlines()
    for line in lines:
        m = re.match(rf"{re.escape(rel)}:(\d+):(\d+): error\[([a-z-]+)\]: \S", line)
        assert m, line
        ln, col = int(m[1]), int(m[2])
        assert 1 <= ln <= max(len(text), 1)
        assert 1 <= col <= len(text[ln - 1]) + 1 if text else col == 1


def test_several_independent_errors_are_all_reported(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli.main(["--format", "concise", "check", "tests/errors/several_errors.cnn"])
    err = capsys.readouterr().err
    assert [ln.split(":")[1] for ln in err.splitlines() if "error[" in ln] == ["2", "3", "4"]
    assert "3 errors" in err


def test_json_diagnostics(capsys, monkeypatch):
    import json

    monkeypatch.chdir(ROOT)
    assert cli.main(["--format", "json", "check", "tests/errors/unknown_layer.cnn"]) == 1
    (d,) = json.loads(capsys.readouterr().out)  # machine-readable output goes to stdout, as ruff does
    assert d["code"] == "unknown-layer"
    assert d["span"] == {"file": "tests/errors/unknown_layer.cnn", "line": 2, "col": 1, "end_line": 2, "end_col": 4}
    assert d["help"] == "did you mean `conv` or `dwconv` or `deconv`?"
