"""Generated specs for the scaling benchmarks: networks of about N layers in five shapes.

    chain      a plain chain, one layer per line: conv, relu, conv, relu, ...
    residual   a stack of residual blocks: conv -> bn -> relu -> conv inside `residual { }`, plus the add
    concat     a stack of 4-branch `concat { ... | ... }` modules, each followed by a 1x1 conv
    wide       one `concat` of N-1 parallel branches (a merge with N-1 inputs)
    nested     blocks nested log2(N) deep: `b1 { conv -> relu }`, `b{k} { b{k-1} -> b{k-1} }`

Every spec is written out in full (no `repeat`), so the front end reads text proportional to N.

    python benchmarks/generate.py chain 10000 > chain10k.cnn
"""

from __future__ import annotations

import math
import sys

KINDS = ("chain", "residual", "concat", "wide", "nested")


def generate(kind: str, n: int) -> str:
    """A spec of about `n` layers (the input not counted) of the given kind."""
    lines = [f"network {kind}{n}", "input 16x16x8"]
    if kind == "chain":
        lines += ["conv f=3 n=8 p=same" if i % 2 == 0 else "relu" for i in range(n)]
    elif kind == "residual":
        for _ in range(max(1, n // 5)):
            lines += ["residual {", "  conv f=3 n=8 p=same -> bn -> relu", "  conv f=3 n=8 p=same", "}"]
    elif kind == "concat":
        for _ in range(max(1, n // 6)):
            lines += ["concat {", "    conv f=1 n=4", "  | conv f=3 n=4 p=same", "  | pool f=3 s=1 p=same",
                      "  | identity", "}", "conv f=1 n=8"]
    elif kind == "wide":
        lines.append("concat {")
        lines += [("  " if i == 0 else "| ") + f"conv f=1 n={1 + i % 4}" for i in range(max(2, n - 1))]
        lines.append("}")
    elif kind == "nested":
        depth = max(1, round(math.log2(max(n, 2) / 2)))
        lines.append("block b0 { conv f=3 n=8 p=same -> relu }")
        lines += [f"block b{k} {{ b{k - 1} -> b{k - 1} }}" for k in range(1, depth + 1)]
        lines.append(f"b{depth}")
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS or not sys.argv[2].isdigit():
        sys.exit(f"usage: python {sys.argv[0]} {{{','.join(KINDS)}}} N")
    sys.stdout.write(generate(sys.argv[1], int(sys.argv[2])))
