"""cnndsl.lexing's contextual lexer against lark's own: the same trees, the same errors, on every spec in the
repository, every bundled library, every golden error file and generated token soup."""

from __future__ import annotations

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Lark

from cnndsl import syntax
from cnndsl.diagnostics import CompileError, render
from cnndsl.lexing import LazyContextualLexer

FILES = sorted([*ROOT.glob("specs/*.cnn"), *ROOT.glob("cnndsl/blocks/*.cnn"), *ROOT.glob("tests/errors/*.cnn"),
                *ROOT.glob("tests/fuzz_corpus/*.cnn")])


@pytest.fixture(scope="module")
def lark_own():
    """A parser with lark's own ContextualLexer, from the same grammar and the same AST builder."""
    return Lark(syntax.grammar_path().read_text(encoding="utf-8"), transformer=syntax._BUILDER, **syntax._SPEC_LARK)


def _outcome(text: str, with_lark: Lark | None, monkeypatch) -> str:
    """The AST, or the syntax error as the user reads it, from cnndsl's parser or from `with_lark`."""
    with monkeypatch.context() as m:
        if with_lark is not None:
            m.setattr(syntax, "parser", lambda: with_lark)
        try:
            return repr(syntax.parse(text, "spec.cnn"))
        except CompileError as e:
            return "\n".join(render(d, e.sources) for d in e.diagnostics)


def test_the_parser_uses_the_lazy_lexer():
    assert isinstance(syntax.parser().parser.lexer, LazyContextualLexer)


def test_every_file_lexes_as_with_lark_own_lexer(lark_own, monkeypatch):
    assert len(FILES) > 120
    errors = 0
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        ours = _outcome(text, None, monkeypatch)
        assert ours == _outcome(text, lark_own, monkeypatch), path.name
        errors += "error[" in ours
    assert errors >= 5  # the golden error files include syntax errors, and these came out the same


PIECES = ["input", "conv", "pool", "fc", "relu", "block", "repeat", "residual", "branches", "concat", "add",
          "import", "defaults", "let", "fn", "for", "in", "if", "else", "output", "network", "and", "or", "not",
          "x", "n", "f", "s", "p", "act", "c", "same", "32x32x3", "3x3", "5", "0.5", "1e3", "-", "+", "*", "/",
          "//", "%", "==", "<=", ">", "!=", "->", "=", ":", ",", "|", "(", ")", "[", "]", "{", "}", " ", "\n",
          "\t", "# note\n", '"lib"', "'x'", "@", "$", "é", "\\", ".", "..", "x2", "_a", "A1", "1x", "0x10"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_token_soup_lexes_as_with_lark_own_lexer(lark_own, pieces):
    from _pytest.monkeypatch import MonkeyPatch

    text = "".join(pieces)
    with MonkeyPatch.context() as mp:
        assert _outcome(text, None, mp) == _outcome(text, lark_own, mp)
