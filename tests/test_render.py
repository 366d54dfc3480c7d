# `cnndsl render`: the DOT text, and real SVGs drawn by Graphviz's `dot`, read back with xml.etree.
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT, SPECS, run_cli

import cnndsl
from cnndsl.backends import dot

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not installed")
SVG = "{http://www.w3.org/2000/svg}"

RESIDUAL = """\
network Bottleneck
input 56x56x64
defaults conv bias=false bn=true act=relu
residual {
  conv f=1 n=64 -> conv f=3 s=2 p=same n=64 -> conv f=1 n=256 act=none
  shortcut { conv f=1 s=2 n=256 act=none }
}
relu
residual { conv f=3 p=same n=256 -> conv f=3 p=same n=256 act=none }
relu
"""

INCEPTION = """\
network Inception3a
input 28x28x192
defaults conv act=relu
inception = concat {
    conv f=1 n=64
  | conv f=1 n=96 -> conv f=3 p=same n=128
  | conv f=1 n=16 -> conv f=5 p=same n=32
  | pool f=3 s=1 p=same -> conv f=1 n=32
}
"""

# ResNet-50's layout (3, 4, 6, 3 bottlenecks) on a small input, so that `dot` stays quick.
DEEP = """\
network DeepRes
input 64x64x3
defaults conv bias=false bn=true act=relu
block bottleneck(n, s=1) {
  residual {
    conv f=1 n=n -> conv f=3 s=s p=same n=n -> conv f=1 n=n*4 act=none
    shortcut { conv f=1 s=s n=n*4 act=none }
  }
  relu
}
block identity_block(n) {
  residual { conv f=1 n=n -> conv f=3 p=same n=n -> conv f=1 n=n*4 act=none }
  relu
}
block stage(n, blocks, s=2) { bottleneck(n, s) -> repeat (blocks - 1) { identity_block(n) } }
conv f=7 s=2 p=3 n=64 -> pool f=3 s=2 p=1
res2 = stage(64, 3, s=1)
res3 = stage(128, 4)
res4 = stage(256, 6)
res5 = stage(512, 3)
gap -> fc 1000 -> softmax
"""


def svg_items(path) -> dict[str, dict[str, list[str]]]:
    """{'node'|'edge'|'cluster': {title: [texts]}} of an SVG written by Graphviz. A frame's title (a text
    node `<scope>/title` beside it) is filed as the frame's text; a last merge's output edge as
    `<merge>->out`."""
    out: dict[str, dict[str, list[str]]] = {"node": {}, "edge": {}, "cluster": {}}
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        kind = g.get("class")
        if kind in out:
            title = g.find(f"{SVG}title").text
            texts = [t.text or "" for t in g.iter(f"{SVG}text")]
            if kind == "node" and title.endswith(dot.TITLE):
                out["cluster"]["cluster_" + title[: -len(dot.TITLE)]] = texts
            elif kind == "node" and title.endswith(dot.OUT):
                continue
            elif kind == "cluster":
                out[kind].setdefault(title, texts)
            else:
                out[kind][title.split("->")[0] + "->out" if title.endswith(dot.OUT) else title] = texts
    return out


def svg_node_xy(path) -> dict[str, tuple[float, float]]:
    """Where each node's first line of text sits (SVG coordinates: y grows downwards)."""
    pos = {}
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        if g.get("class") == "node":
            t = next(g.iter(f"{SVG}text"))
            pos[g.find(f"{SVG}title").text] = (float(t.get("x")), float(t.get("y")))
    return pos


def dashed_edges(path) -> set[str]:
    out = set()
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        if g.get("class") == "edge" and any(p.get("stroke-dasharray") for p in g.iter(f"{SVG}path")):
            out.add(g.find(f"{SVG}title").text)
    return out


def render(tmp_path, text: str, *args: str, name: str = "net"):
    """Write the spec, run `cnndsl render` on it, return (model, svg path)."""
    src = tmp_path / f"{name}.cnn"
    src.write_text(text)
    out = tmp_path / f"{name}.svg"
    r = run_cli("render", src, "-o", out, *args)
    assert r.code == 0, r.err
    assert r.out.strip() == f"wrote {out}"
    return cnndsl.compile_file(src), out


def assert_full_drawing(m, svg) -> dict:
    """Every layer is a node titled with its id, every edge of the graph is drawn and labelled."""
    items = svg_items(svg)
    g = m.graph
    assert set(items["node"]) == set(g.nodes)
    for e in list(items["edge"]):  # an encoder-decoder's way back up is laid out reversed (drawn with dir=back)
        u, _, v = e.partition("->")
        if not g.has_edge(u, v) and g.has_edge(v, u):
            items["edge"][f"{v}->{u}"] = items["edge"].pop(e)
    last = {n for n in g if not g.out_degree(n) and cnndsl.LAYERS[g.nodes[n]["op"]].symbol}
    assert set(items["edge"]) == {f"{u}->{v}" for u, v in g.edges} | {f"{n}->out" for n in last}
    for (u, v) in g.edges:  # a residual's identity skip is the block's input, labelled where it enters
        identity = g.nodes[v]["role"] == "residual" and g.edges[u, v]["slot"] == 1
        assert items["edge"][f"{u}->{v}"] == ([] if identity else ["x".join(map(str, g.nodes[u]["shape"]))])
    for n in last:  # a merge's output shape is drawn, even when nothing follows it
        assert items["edge"][f"{n}->out"] == ["x".join(map(str, g.nodes[n]["shape"]))]
    return items


# --- real drawings ------------------------------------------------------------------------------


@needs_dot
def test_lenet5_svg(tmp_path):
    out = tmp_path / "lenet5.svg"
    r = run_cli("render", SPECS / "lenet5.cnn", "-o", out)
    assert r.code == 0, r.err
    m = cnndsl.compile_file(SPECS / "lenet5.cnn")
    items = assert_full_drawing(m, out)
    assert items["node"]["conv1"] == ["conv 5x5, s=1, n=6", "28x28x6 · 456 params"]
    assert items["node"]["pool1"] == ["max pool 2x2, s=2", "14x14x6"]
    assert items["node"]["fc1"] == ["fc 120", "120 · 48.1k params"]
    assert items["node"]["input"] == ["input", "32x32x3"]
    assert items["cluster"] == {}
    legend = " ".join(t.text or "" for t in ET.parse(out).getroot().iter(f"{SVG}text"))
    assert "LeNet5" in legend and "62,006 trainable parameters" in legend and "651,720 MACs" in legend
    # top to bottom by default: each layer sits below the one before it
    ys = [svg_node_xy(out)[n][1] for n in m.graph]
    assert ys == sorted(ys)


@needs_dot
def test_residual_block_with_projection(tmp_path):
    m, svg = render(tmp_path, RESIDUAL)
    items = assert_full_drawing(m, svg)
    assert items["cluster"] == {"cluster_residual1": ["residual (projection)"], "cluster_residual2": ["residual"]}
    assert items["node"]["residual1"] == ["⊕"] and items["node"]["residual2"] == ["⊕"]
    assert items["node"]["residual1.shortcut"] == ["conv 1x1, s=2, n=256, bn", "28x28x256 · 17.4k params"]
    assert items["node"]["residual1.conv2"][0] == "conv 3x3, s=2, p=same, n=64, bn, relu"
    # the shortcut path (into and out of the projection) and the identity skip are dashed; nothing else
    assert dashed_edges(svg) == {"input->residual1.shortcut", "residual1.shortcut->residual1", "relu1->residual2"}


@needs_dot
def test_inception_module_branches_side_by_side(tmp_path):
    m, svg = render(tmp_path, INCEPTION)
    items = assert_full_drawing(m, svg)
    assert set(items["cluster"]) == {"cluster_inception"} | {f"cluster_inception.branch{i}" for i in (2, 3, 4)}
    assert items["cluster"]["cluster_inception"] == ["inception = concat of 4 branches"]
    assert items["node"]["inception"] == ["‖"]
    assert items["node"]["inception.branch3.conv2"] == ["conv 5x5, s=1, p=same, n=32, relu", "28x28x32 · 12.8k params"]
    heads = ["inception.branch1", "inception.branch2.conv1", "inception.branch3.conv1", "inception.branch4.pool1"]
    pos = svg_node_xy(svg)
    assert len({pos[n][1] for n in heads}) == 1, "the branches' first layers share one rank"
    assert [pos[n][0] for n in heads] == sorted(pos[n][0] for n in heads), "branches keep the spec's order"
    assert dashed_edges(svg) == set()


@needs_dot
def test_collapsed_deep_resnet(tmp_path):
    m, svg = render(tmp_path, DEEP, "--collapse")
    g = m.graph
    items = svg_items(svg)
    blocks = [s for s, d in g.graph["scopes"].items() if d["kind"] == "block" and "." in s]
    assert len(blocks) == 16 and len(g) == 90
    top = [n for n, d in g.nodes(data=True) if d["scope"] == ""]
    # the innermost blocks fold, and each run of identical ones is one node `x k`, as ResNet's Table 1
    runs = {f"res{i}.identity_block1" for i in (2, 3, 4, 5)}
    assert set(items["node"]) == {f"res{i}.bottleneck1" for i in (2, 3, 4, 5)} | runs | set(top)
    # the stages, blocks made of blocks, stay clusters around them
    assert items["cluster"] == {"cluster_res2": ["res2 = stage(n=64, blocks=3, s=1)"],
                                "cluster_res3": ["res3 = stage(n=128, blocks=4, s=2)"],
                                "cluster_res4": ["res4 = stage(n=256, blocks=6, s=2)"],
                                "cluster_res5": ["res5 = stage(n=512, blocks=3, s=2)"]}

    def totals(prefixes) -> tuple[int, str]:
        members = [n for n in g if n.startswith(prefixes)]
        params, macs = (sum(g.nodes[n][k] for n in members) for k in ("params", "macs"))
        return len(members), f"{dot.si(params)} params · {dot.si(macs)} MACs"

    n, cost = totals("res3.bottleneck1.")
    assert items["node"]["res3.bottleneck1"] == ["bottleneck(n=128, s=2)", f"block · {n} layers", f"8x8x512 · {cost}"]
    n, cost = totals(tuple(f"res4.identity_block{i}." for i in range(1, 6)))
    assert n == 25 and all(f"res4.identity_block{i}" in g.graph["scopes"] for i in range(1, 6))
    assert items["node"]["res4.identity_block1"] == ["identity_block(n=256) × 5", f"block × 5 · {n} layers",
                                                     f"4x4x1024 · {cost}"]
    # one edge per pair of drawn nodes: a chain from the stem through the blocks to the head
    assert len(items["edge"]) == len(items["node"]) - 1
    assert dashed_edges(svg) == set()

    # --depth 0 folds every top-level scope: the four stages
    m, svg = render(tmp_path, DEEP, "--depth", "0", "--rankdir", "LR", name="depth0")
    items = svg_items(svg)
    assert items["cluster"] == {}
    assert set(items["node"]) == {"res2", "res3", "res4", "res5"} | set(top)
    assert items["node"]["res4"][:2] == ["res4 = stage(n=256, blocks=6, s=2)",
                                           f"block · {sum(n.startswith('res4.') for n in g)} layers"]
    pos = svg_node_xy(svg)
    assert pos["input"][0] < pos["res2"][0] < pos["res5"][0] < pos["softmax1"][0], "left to right"


@needs_dot
@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.cnn")), ids=lambda p: p.stem)
def test_every_bundled_spec_renders(tmp_path, spec):
    m = cnndsl.compile_file(spec)
    if len(m.graph) <= 300:
        out = dot.render_file(m, tmp_path / "full.svg")
        assert out.image and out.path == tmp_path / "full.svg"
        assert_full_drawing(m, out.path)
    out = dot.render_file(m, tmp_path / "collapsed.svg", collapse=True)
    items = svg_items(out.path)
    assert len(items["node"]) <= len(m.graph)
    scopes = m.graph.graph["scopes"]
    for s in items["node"]:
        assert s in m.graph or scopes[s]["kind"] in dot.FOLDABLE
    for c in items["cluster"]:  # a block stays a cluster only when it holds blocks, which are folded
        s = c.removeprefix("cluster_")
        inner = [t for t in scopes if t.startswith(s + ".") and scopes[t]["kind"] == "block"]
        assert scopes[s]["kind"] not in dot.FOLDABLE or inner


@needs_dot
def test_png_and_pdf(tmp_path):
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        r = run_cli("render", SPECS / "lenet5.cnn", "-o", tmp_path / f"net.{fmt}")
        assert r.code == 0, r.err
        assert (tmp_path / f"net.{fmt}").read_bytes().startswith(magic)


@needs_dot
def test_labels_are_escaped(tmp_path):
    text = 'input 8x8x3\nblock b(n, tag="<b>&{x}|y") {\n  conv f=3 n=n p=same\n  relu\n}\nb(4)\n'
    m, svg = render(tmp_path, text)
    assert svg_items(svg)["cluster"] == {"cluster_b1": ['b(n=4, tag=<b>&{x}|y)']}
    m, svg = render(tmp_path, text, "--collapse", name="collapsed")
    assert svg_items(svg)["node"]["b1"][0] == "b(n=4, tag=<b>&{x}|y)"


# --- without Graphviz, and the DOT text itself ---------------------------------------------------


def test_without_dot_writes_the_dot_file(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    spec = tmp_path / "lenet5.cnn"
    spec.write_text((SPECS / "lenet5.cnn").read_text())
    p = subprocess.run([sys.executable, "-m", "cnndsl", "render", str(spec)], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PATH": str(empty)}, timeout=60)
    assert p.returncode == 2, p.stderr  # the SVG asked for was not made: not a success
    assert not (tmp_path / "lenet5.svg").exists()
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "install Graphviz" in lines[0] and str(tmp_path / "lenet5.dot") in lines[0]
    text = (tmp_path / "lenet5.dot").read_text()
    assert text == dot.to_dot(cnndsl.compile_file(spec))
    if HAS_DOT:  # the fallback file is a valid graph
        svg = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, check=True).stdout
        (tmp_path / "from_dot.svg").write_bytes(svg)
        assert set(svg_items(tmp_path / "from_dot.svg")["node"]) == set(cnndsl.compile_file(spec).graph)


def test_dot_text_is_deterministic():
    a = dot.to_dot(cnndsl.compile_text(DEEP, "deep.cnn"), collapse=True)
    b = dot.to_dot(cnndsl.compile_text(DEEP, "deep.cnn"), collapse=True)
    assert a == b
    text = dot.to_dot(cnndsl.compile_text(RESIDUAL))
    assert text.startswith('digraph "Bottleneck" {\n') and 'rankdir="TB"' in text
    assert '"residual1.conv3" -> "residual1" [label="28x28x256"' in text


def test_dot_output_and_stdout(tmp_path, cli):
    r = cli("render", SPECS / "lenet5.cnn", "-o", tmp_path / "net.dot", "--rankdir", "lr")
    assert r.code == 0, r.err
    text = (tmp_path / "net.dot").read_text()
    assert 'rankdir="LR"' in text and len(re.findall(r'^  "[^"]+" -> "[^"]+" \[', text, re.M)) == 8
    r = cli("render", SPECS / "lenet5.cnn", "-o", "-", "--rankdir", "LR")
    assert r.code == 0 and r.out == text
    assert os.listdir(tmp_path) == ["net.dot"], "no temporary files are left behind"


def test_default_output_is_beside_the_spec(tmp_path, cli, spec):
    path = spec(RESIDUAL, name="block.cnn")
    r = cli("render", path)
    assert r.code == 0, r.err
    made = tmp_path / ("block.svg" if HAS_DOT else "block.dot")
    assert made.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["block.cnn", made.name])


def test_errors(tmp_path, cli, spec):
    good = spec(RESIDUAL, name="good.cnn")
    for out, message in (
        (tmp_path / "net.jpg", "cannot tell the output format of"),
        (tmp_path / "net", "use .svg, .png, .pdf or .dot"),
        (tmp_path / "missing" / "net.svg", "does not exist"),
    ):
        r = cli("render", good, "-o", out)
        assert r.code == 2, r.err
        assert r.err.startswith("cnndsl: error: ") and message in r.err and len(r.err.strip().splitlines()) == 1
    (tmp_path / "folder.svg").mkdir()
    r = cli("render", good, "-o", tmp_path / "folder.svg")
    assert r.code == 2 and "it is a folder" in r.err
    r = cli("render", good, "--depth", "-1")
    assert r.code == 2 and "--depth" in r.err
    r = cli("render", good, "--rankdir", "diagonal")
    assert r.code == 2

    bad = spec("input 3x3x1\nconv f=5 n=2\n", name="bad.cnn")
    r = cli("render", bad, "-o", tmp_path / "bad.svg")
    assert r.code == 1 and "error[shape-mismatch]" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "bad.svg").exists()
    assert re.search(r"cannot read", cli("render", tmp_path / "nope.cnn").err)


def test_check_and_summary_do_not_import_graphviz():
    code = ("import sys, cnndsl.cli as c; c.main(['summary', sys.argv[1]]); c.main(['check', sys.argv[1]]); "
            "assert 'graphviz' not in sys.modules, 'graphviz was imported'")
    p = subprocess.run([sys.executable, "-c", code, str(SPECS / "lenet5.cnn")], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr


def test_compile_draws_in_the_same_run(tmp_path, cli):
    out = tmp_path / "net.onnx"
    r = cli("compile", SPECS / "lenet5.cnn", "-o", out, "--svg", tmp_path / "net.dot", "--rankdir", "LR")
    assert r.code == 0, r.err
    assert out.exists() and f"wrote {tmp_path / 'net.dot'}" in r.out
    assert (tmp_path / "net.dot").read_text() == dot.to_dot(cnndsl.compile_file(SPECS / "lenet5.cnn"), rankdir="LR")
    r = cli("compile", SPECS / "lenet5.cnn", "-o", tmp_path / "other.onnx", "--svg", tmp_path / "net.gif")
    assert r.code == 2 and "cannot tell the output format" in r.err
    assert not (tmp_path / "other.onnx").exists(), "a bad --svg is refused before anything is written"


@needs_dot
@pytest.mark.parametrize("name, spec, args", [
    ("lenet5", "lenet5", ()), ("inception_module", "inception_module", ()),
    ("resnet152_collapsed", "resnet152", ("--collapse",)),
])
def test_readme_images_are_current(tmp_path, name, spec, args):
    """docs/img/*.svg are `cnndsl render` output: the same nodes, edges, frames and texts as a fresh run."""
    out = tmp_path / f"{name}.svg"
    r = run_cli("render", SPECS / f"{spec}.cnn", "-o", out, *args)
    assert r.code == 0, r.err
    assert svg_items(ROOT / "docs" / "img" / f"{name}.svg") == svg_items(out), \
        f"regenerate with `cnndsl render specs/{spec}.cnn {' '.join(args)} -o docs/img/{name}.svg`"


def test_colours_and_numbers():
    assert dot.group_color("conv") == "#cfe2f3"
    assert dot.group_color("attention") == dot.group_color("attention") in dot.FALLBACK  # crc32, not hash()
    assert [dot.si(n) for n in (0, 456, 48_120, 62_006, 2_359_808, 138_357_544, 11_513_626_624)] == \
        ["0", "456", "48.1k", "62k", "2.36M", "138M", "11.5G"]
    with pytest.raises(ValueError, match="rankdir"):
        dot.to_dot(cnndsl.compile_file(SPECS / "lenet5.cnn"), rankdir="up")
