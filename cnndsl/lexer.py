"""A Pygments lexer for `.cnn` specs, registered as the `pygments.lexers` entry point `cnn`, so that
docs tools (Sphinx, MkDocs, pygmentize) highlight ```cnn blocks. Needs Pygments (the `highlight` extra).

The token classes follow grammar/cnndsl.lark; which names are layer kinds comes from the registry, so a
new kind is highlighted the moment it is registered.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from .layers import INTERNAL, LAYERS

KEYWORDS = ("network", "input", "defaults", "import", "output", "block", "residual", "shortcut", "repeat", "fn", "let",
            "for", "in", "if", "elif", "else", "and", "or", "not")
CONSTANTS = ("true", "false", "same", "valid", "max", "avg", "none", "nearest", "bilinear")


class CnnLexer(RegexLexer):
    name = "cnndsl"
    aliases = ["cnn", "cnndsl"]
    filenames = ["*.cnn"]
    mimetypes = ["text/x-cnndsl"]
    url = "https://pypi.org/project/cnndsl/"

    tokens = {
        "root": [
            (r"#[^\n]*", Comment.Single),
            (r"\n", Whitespace),
            (r"[ \t\f\r]+", Whitespace),
            (r"(block|fn)(\s+)([A-Za-z_]\w*)", bygroups(Keyword, Whitespace, Name.Function)),
            (r"(:)(\s*)([0-9]+(?:x[0-9]+)*)", bygroups(Operator, Whitespace, Number.Integer)),  # a checked shape
            (r"^(\s*)([A-Za-z_]\w*)(\s*)(=)(?!=)", bygroups(Whitespace, Name.Variable, Whitespace, Operator)),
            (r"([A-Za-z_]\w*)(=)", bygroups(Name.Attribute, Operator)),  # a parameter: `f=5`, `bn=true`
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(sorted((k for k in LAYERS if k not in INTERNAL), key=len, reverse=True), suffix=r"\b"),
             Name.Builtin),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (r'"[^"\n]*"', String),
            (r"[0-9]+(?:x[0-9]+)+", Number.Integer),
            (r"[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|\.[0-9]+(?:[eE][-+]?[0-9]+)?", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"[A-Za-z_]\w*", Name),
            (r"->|==|!=|<=|>=|//|\*\*|[|+\-*/%<>=:]", Operator),
            (r"[{}()\[\],]", Punctuation),
            (r".", Text),
        ],
    }
