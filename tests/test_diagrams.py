"""Diagrams good enough for a paper: PNGs at a high resolution, read back; merges' shapes in every format;
skips drawn as skips; an encoder-decoder as a U; no title in an edge's way; too-large bitmaps folded or
refused in one line; a format that cannot be made is not a success."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

from conftest import ROOT, SPECS, run_cli
from test_render import SVG, dashed_edges, svg_items, svg_node_xy

import cnndsl
from cnndsl.backends import dot

assert shutil.which("dot"), "Graphviz's `dot` is needed (./dev test installs it)"


def png_info(path) -> dict:
    """Width, height and dots per inch from a PNG's IHDR and pHYs chunks, checking every chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    info, i = {}, 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + n]
        assert struct.unpack(">I", data[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + body), "bad CRC"
        if kind == b"IHDR":
            info["width"], info["height"] = struct.unpack(">II", body[:8])
        elif kind == b"pHYs":
            ppm_x, _, unit = struct.unpack(">IIB", body)
            if unit == 1:  # pixels per metre
                info["dpi"] = round(ppm_x * 0.0254)
        i += 12 + n
        if kind == b"IEND":
            break
    return info


def test_png_is_drawn_at_200_dpi_by_default(tmp_path):
    r = run_cli("render", SPECS / "lenet5.cnn", "-o", tmp_path / "a.png")
    assert r.code == 0 and r.err == "", r.err
    hi = png_info(tmp_path / "a.png")
    r = run_cli("render", SPECS / "lenet5.cnn", "-o", tmp_path / "b.png", "--dpi", "96")
    lo = png_info(tmp_path / "b.png")
    assert hi.get("dpi", 200) == 200 and lo.get("dpi", 96) == 96
    # the same drawing, 200/96 times the pixels (Graphviz rounds each side to whole pixels)
    assert abs(hi["width"] / lo["width"] - 200 / 96) < 0.02 and abs(hi["height"] / lo["height"] - 200 / 96) < 0.02
    assert run_cli("render", SPECS / "lenet5.cnn", "-o", tmp_path / "c.png", "--dpi", "0").code == 2


def test_every_merge_shows_its_output_shape(tmp_path):
    m = cnndsl.compile_file(SPECS / "inception_module.cnn")
    text = m.to_dot()
    # the module's output, 28x28x256 (Szegedy et al. 2015, Table 1, inception (3a)), drawn on an edge
    assert '"concat1" -> "concat1/out" [label="28x28x256"' in text
    for fmt in ("svg", "png", "pdf"):
        assert run_cli("render", SPECS / "inception_module.cnn", "-o", tmp_path / f"i.{fmt}").code == 0
    assert svg_items(tmp_path / "i.svg")["edge"]["concat1->out"] == ["28x28x256"]
    assert png_info(tmp_path / "i.png")["width"] > 1500
    assert (tmp_path / "i.pdf").read_bytes().startswith(b"%PDF")


def test_named_value_concatenations_are_skips_and_unet_is_a_u(tmp_path):
    out = tmp_path / "unet.svg"
    assert run_cli("render", SPECS / "unet.cnn", "-o", out, "--collapse").code == 0
    m = cnndsl.compile_file(SPECS / "unet.cnn")
    skips = {e for e in dashed_edges(out)}
    # the four skip connections of Ronneberger et al. 2015, Figure 1 (c2..c4 are a pool and a folded block)
    assert skips == {"c1->up4.concat1", "c2.double_conv1->up3.concat1", "c3.double_conv1->up2.concat1",
                     "c4.double_conv1->up1.concat1"}
    xy = svg_node_xy(out)
    # each skip joins two tensors side by side: the encoder's on the left, the decoder's on the right
    for s in skips:
        u, w = s.split("->")
        assert abs(xy[u][1] - xy[w][1]) < 30 and xy[u][0] < xy[w][0], s
    # the bottom of the U is the lowest thing drawn; the output climbs back up to the top
    bottom = xy["double_conv1"]
    assert all(y <= bottom[1] for _, y in xy.values())
    assert xy["conv1"][1] < xy["c2.pool1"][1]
    assert m.layers[-1].name == "conv1"


def test_no_edge_runs_through_a_frame_title(tmp_path):
    out = tmp_path / "r.svg"
    assert run_cli("render", SPECS / "resnet50.cnn", "--collapse", "-o", out).code == 0
    root = ET.parse(out).getroot()
    titles, paths = [], []
    for g in root.iter(f"{SVG}g"):
        if g.find(f"{SVG}title") is None:
            continue
        name = g.find(f"{SVG}title").text or ""
        if g.get("class") == "node" and name.endswith(dot.TITLE):
            t = next(g.iter(f"{SVG}text"))
            x, y, size = float(t.get("x")), float(t.get("y")), float(t.get("font-size"))
            half = len(t.text) * size * 0.3
            titles.append((name, x - half, x + half, y - size, y))
        if g.get("class") == "edge":
            for p in g.iter(f"{SVG}path"):
                nums = [float(v) for v in p.get("d").replace("M", " ").replace("C", " ").replace(",", " ").split()]
                pts = list(zip(nums[::2], nums[1::2], strict=False))
                for (xa, ya), (xb, yb) in zip(pts, pts[1:], strict=False):  # along the control polygon
                    paths += [(xa + (xb - xa) * k / 20, ya + (yb - ya) * k / 20) for k in range(21)]
    assert len(titles) == 4  # conv2_x .. conv5_x
    for name, x0, x1, y0, y1 in titles:
        assert not [(x, y) for x, y in paths if x0 <= x <= x1 and y0 <= y <= y1], f"an edge crosses {name}"
    # frames draw no label of their own: nothing else can sit on their border
    assert all(texts == [] or len(texts) == 1 for texts in svg_items(out)["cluster"].values())


def test_legend_leads_with_trainable_parameters_and_dropout_is_regularization():
    m = cnndsl.compile_file(SPECS / "resnet50.cnn")
    # torchvision's ResNet-50: 25,557,032 trainable parameters; 53,120 batch-norm running statistics
    assert "25,557,032 trainable parameters (+53,120 non-trainable)" in m.to_dot(collapse=True)
    text = cnndsl.compile_file(SPECS / "googlenet.cnn").to_dot(depth=0)
    assert "regularization" in text and f'fillcolor="{dot.GROUP_COLORS["regularization"]}"' in text
    assert cnndsl.LAYERS["dropout"].group == "regularization"


LONG_BLOCKS = "input 32x32x3\nblock b(n) { conv f=3 p=same n=n -> relu }\nrepeat 150 { b(8) }\n"
LONG_CHAIN = "input 32x32x3\n" + "conv f=3 p=same n=8\n" * 300


def test_a_bitmap_too_large_is_folded_with_a_hint_or_refused(tmp_path):
    spec = tmp_path / "long.cnn"
    spec.write_text(LONG_BLOCKS)
    r = run_cli("render", spec, "-o", tmp_path / "long.png")
    assert r.code == 0, r.err
    assert r.err.count("\n") == 1 and "too large" in r.err and "--collapse" in r.err
    assert "Warning" not in r.err and "cairo" not in r.err  # Graphviz's own words never leak
    info = png_info(tmp_path / "long.png")
    assert max(info["width"], info["height"]) <= dot.BITMAP_LIMIT
    spec.write_text(LONG_CHAIN)  # nothing to fold
    r = run_cli("render", spec, "-o", tmp_path / "chain.png")
    assert r.code == 2 and r.err.startswith("cnndsl: error: the diagram is larger than 32,767 px")
    assert len(r.err.strip().splitlines()) == 1 and ".svg or .pdf" in r.err
    assert not (tmp_path / "chain.png").exists()
    assert run_cli("render", spec, "-o", tmp_path / "chain.svg").code == 0  # vector formats have no limit


def test_an_image_without_graphviz_is_not_a_success(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    p = subprocess.run([sys.executable, "-m", "cnndsl", "render", str(SPECS / "lenet5.cnn"), "-o",
                        str(tmp_path / "n.png")], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PATH": str(empty)}, timeout=60)
    assert p.returncode == 2 and "install Graphviz" in p.stderr and (tmp_path / "n.dot").exists()
    assert not (tmp_path / "n.png").exists()


def test_readme_png_is_current(tmp_path):
    """docs/img/unet_collapsed.png is `cnndsl render` output at 110 dpi: the same size as a fresh run."""
    out = tmp_path / "unet.png"
    r = run_cli("render", SPECS / "unet.cnn", "--collapse", "--dpi", "110", "-o", out)
    assert r.code == 0 and r.err == "", r.err
    fresh, shown = png_info(out), png_info(ROOT / "docs" / "img" / "unet_collapsed.png")
    assert (fresh["width"], fresh["height"]) == (shown["width"], shown["height"]), \
        "regenerate with `cnndsl render specs/unet.cnn --collapse --dpi 110 -o docs/img/unet_collapsed.png`"
    assert max(fresh["width"], fresh["height"]) <= dot.BITMAP_LIMIT
