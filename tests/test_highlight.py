"""Highlighting: the Pygments lexer found through its entry point, and the VS Code extension's TextMate
grammar kept in step with the layer registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pygments import lex
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number

from cnndsl.layers import INTERNAL, LAYERS

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
SPECS = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "cnndsl" / "blocks").glob("*.cnn"))


def test_the_lexer_is_registered_as_an_entry_point():
    assert type(get_lexer_by_name("cnn")).__name__ == "CnnLexer"
    assert type(get_lexer_for_filename("lenet5.cnn")).__name__ == "CnnLexer"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_lexes_without_errors_and_round_trips(path):
    text = path.read_text()
    toks = list(lex(text, get_lexer_by_name("cnn")))
    assert "".join(v for _, v in toks) == text
    assert not [v for t, v in toks if t in Error]


def test_token_classes():
    toks = [(t, v) for t, v in lex("block b(n) { conv f=3 n=n : 8x8x4 }  # c\nx = b(4) -> relu\n",
                                   get_lexer_by_name("cnn")) if v.strip()]
    want = {"block": Keyword, "b": Name.Function, "conv": Name.Builtin, "f": Name.Attribute,
            "8x8x4": Number.Integer, "# c": Comment.Single, "x": Name.Variable, "relu": Name.Builtin}
    got = dict((v, t) for t, v in reversed(toks))
    for v, t in want.items():
        assert got[v] in t, (v, got[v])


def test_vscode_grammar_and_manifest():
    manifest = json.loads((VSCODE / "package.json").read_text())
    (lang,) = manifest["contributes"]["languages"]
    (gram,) = manifest["contributes"]["grammars"]
    assert lang["extensions"] == [".cnn"] and gram["language"] == lang["id"] == "cnn"
    assert (VSCODE / manifest["main"]).is_file() and (VSCODE / lang["configuration"]).is_file()
    assert "cnndsl" in (VSCODE / manifest["main"]).read_text() and '"lsp"' in (VSCODE / "package.json").read_text()
    g = json.loads((VSCODE / gram["path"]).read_text())
    assert g["scopeName"] == gram["scopeName"]
    for rule in g["repository"].values():
        re.compile(rule["match"])  # the grammar's patterns use only what Python's re and Oniguruma share
    from cnndsl.lexer import KEYWORDS

    words = re.compile(g["repository"]["keyword"]["match"])
    assert [k for k in KEYWORDS if not words.fullmatch(k)] == []
    kinds = re.compile(g["repository"]["kind"]["match"])
    missing = [k for k in LAYERS if k not in INTERNAL and not kinds.fullmatch(k)]
    assert not missing, f"add {missing} to the TextMate grammar's `kind` rule"


DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def test_the_readme_and_the_language_reference_show_highlighted_specs():
    assert sum(tag == "cnn" for tag, _, _ in _fences(ROOT / "README.md")) >= 3
    assert sum(tag == "cnn" for tag, _, _ in _fences(ROOT / "docs" / "language.md")) >= 10
FENCE = re.compile(r"^[ \t]*```(\S*)[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)


def _fences(path: Path) -> list[tuple[str, str, int]]:
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_docs_example_is_tagged_and_specs_lex_cleanly(path):
    """Docs tools highlight a fence by its tag: spec examples are ```cnn (our lexer), shell sessions ```console,
    commands ```sh; a spec example lexes without one error token."""
    fences = _fences(path)
    assert [line for tag, _, line in fences if not tag] == [], f"untagged fences in {path.name}"
    lexer = get_lexer_by_name("cnn")
    for tag, body, line in fences:
        if tag == "cnn":
            bad = [v for t, v in lex(body, lexer) if t in Error]
            assert bad == [], f"{path.name}:{line}: {bad}"
