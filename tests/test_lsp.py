"""`cnndsl lsp` driven as an editor drives it: a real server process on stdin/stdout and a small JSON-RPC
client: open, edit, diagnostics (the same codes, spans and messages as `check`), hover, inlay hints,
definition (into the bundled libraries too), symbols, completion, shutdown."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class Client:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's pipes."""

    def __init__(self, cwd: Path):
        self.p = subprocess.Popen([sys.executable, "-m", "cnndsl", "lsp"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        self.msgs: queue.Queue = queue.Queue()
        self.next_id = 0
        self.pending: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.p.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                headers[k.lower()] = v.strip()
            self.msgs.put(json.loads(out.read(int(headers["content-length"]))))

    def send(self, method: str, params, id_: int | None = None):
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        if id_ is not None:
            msg["id"] = id_
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.p.stdin.flush()

    def _wait(self, match, timeout: float = 30):
        for i, m in enumerate(self.pending):
            if match(m):
                return self.pending.pop(i)
        while True:
            m = self.msgs.get(timeout=timeout)
            if match(m):
                return m
            self.pending.append(m)

    def request(self, method: str, params=None, timeout: float = 30):
        self.next_id += 1
        i = self.next_id
        self.send(method, params, i)
        m = self._wait(lambda m: m.get("id") == i and "method" not in m, timeout)
        assert "error" not in m, m
        return m["result"]

    def notification(self, method: str, timeout: float = 30):
        return self._wait(lambda m: m.get("method") == method, timeout)["params"]


@pytest.fixture
def lsp(tmp_path):
    c = Client(tmp_path)
    caps = c.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
    c.send("initialized", {})
    c.caps = caps["capabilities"]
    yield c
    if c.p.poll() is None:
        c.p.kill()
        c.p.wait()


def _open(c: Client, path: Path, text: str) -> list[dict]:
    path.write_text(text)
    c.send("textDocument/didOpen", {"textDocument": {"uri": path.as_uri(), "languageId": "cnn", "version": 1,
                                                     "text": text}})
    return c.notification("textDocument/publishDiagnostics")["diagnostics"]


def _at(c: Client, method: str, path: Path, line: int, col: int, **extra):
    """A position request at our 1-based line and column."""
    return c.request(method, {"textDocument": {"uri": path.as_uri()},
                              "position": {"line": line - 1, "character": col - 1}, **extra})


def test_diagnostics_equal_checks_and_follow_edits(lsp, tmp_path, cli):
    spec = tmp_path / "net.cnn"
    text = "input 32x32x3\nconv f=5 n=6 -> pool f=2 s=2\ncnv f=3 n=8\nconv f=7 n=32 : 9x9x9\n"
    got = _open(lsp, spec, text)
    r = cli("--format", "json", "check", str(spec))
    want = json.loads(r.out)  # `--format json` prints the list on stdout
    assert r.code == 1 and len(got) == len(want) >= 1
    for g, w in zip(got, want, strict=True):
        assert (g["code"], g["message"], g["source"]) == (w["code"], w["message"], "cnndsl")
        s = w["span"]
        assert g["range"] == {"start": {"line": s["line"] - 1, "character": s["col"] - 1},
                              "end": {"line": s["end_line"] - 1, "character": s["end_col"] - 1}}
        assert g["severity"] == 1
    # fix the typo with an incremental edit: the diagnostics follow
    lsp.send("textDocument/didChange", {
        "textDocument": {"uri": spec.as_uri(), "version": 2},
        "contentChanges": [{"range": {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 3}},
                            "text": "conv"}]})
    got = lsp.notification("textDocument/publishDiagnostics")
    assert got["version"] == 2 and [d["code"] for d in got["diagnostics"]] == ["shape-annotation"]  # 6x6x32, not 9x9x9
    lsp.send("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 3},
                                        "contentChanges": [{"text": "input 32x32x3\nconv f=5 n=6\n"}]})
    assert lsp.notification("textDocument/publishDiagnostics")["diagnostics"] == []


def test_hover_hints_symbols_and_definitions(lsp, tmp_path):
    spec = tmp_path / "net.cnn"
    text = ("import resnet\ninput 32x32x3\n"
            "block unit(n, s=1) {\n  conv f=3 s=s p=same n=n -> relu\n}\n"
            "a = conv f=5 s=1 n=6\n"        # line 6: CONV1 of the notes' LeNet-5, 28x28x6
            "unit(8) -> bottleneck_stage(4, 1, s=1)\n"
            "  -> concat(a) : 28x28x22\n"
            "fc 10\n")
    assert _open(lsp, spec, text) == []
    assert lsp.caps["hoverProvider"] and lsp.caps["definitionProvider"] and lsp.caps["inlayHintProvider"]

    h = _at(lsp, "textDocument/hover", spec, 6, 5)["contents"]["value"]
    # a 5x5 conv, 3 -> 6 channels: (5*5*3 + 1) * 6 = 456 parameters, 28*28*6*75 = 352,800 MACs (the notes' table)
    assert "32x32x3 → **28x28x6**" in h and "456 parameters" in h and "352,800 MACs" in h and "**conv**" in h
    # the receptive field of one 5x5 conv at stride 1 is 5x5, its jump 1, and it starts at pixel 0 (no padding)
    assert "receptive field **5x5**, effective stride (jump) 1\n" in h and "starting" not in h
    h = _at(lsp, "textDocument/hover", spec, 7, 2)["contents"]["value"]
    assert "block unit(n, s=1)" in h and "this call: 28x28x6 → **28x28x8**" in h
    # then a 3x3 conv with p=1: r = 5 + (3 - 1)·1 = 7, j = 1·1, start = 0 - 1·1 = -1 (Araujo et al., Distill 2019)
    assert "receptive field **7x7**, effective stride (jump) 1, starting at input pixel -1" in h
    h = _at(lsp, "textDocument/hover", spec, 9, 1)["contents"]["value"]  # fc: one window over everything
    assert "receptive field **" in h and "(the whole field this vector depends on)" in h
    h = _at(lsp, "textDocument/hover", spec, 8, 13)["contents"]["value"]
    assert "value `a`, defined at line 6: **28x28x6**" in h

    hints = lsp.request("textDocument/inlayHint", {"textDocument": {"uri": spec.as_uri()}, "range": {
        "start": {"line": 0, "character": 0}, "end": {"line": 9, "character": 0}}})
    labels = {h["position"]["line"] + 1: h["label"] for h in hints}
    assert labels == {6: ": 28x28x6", 7: ": 28x28x16", 9: ": 10"}  # line 8 states its shape already

    syms = lsp.request("textDocument/documentSymbol", {"textDocument": {"uri": spec.as_uri()}})
    assert {(s["name"], s["kind"]) for s in syms} == {("unit", 12), ("a", 13)}

    d = _at(lsp, "textDocument/definition", spec, 7, 3)  # unit(8) -> its block
    assert d["uri"] == spec.as_uri() and d["range"]["start"] == {"line": 2, "character": 6}
    d = _at(lsp, "textDocument/definition", spec, 8, 13)  # concat(a) -> a =
    assert d["range"]["start"] == {"line": 5, "character": 0}
    d = _at(lsp, "textDocument/definition", spec, 7, 15)  # bottleneck_stage -> the bundled library
    lib = ROOT / "cnndsl" / "blocks" / "resnet.cnn"
    assert d["uri"] == lib.resolve().as_uri()
    line = lib.read_text().split("\n")[d["range"]["start"]["line"]]
    assert line.startswith("block bottleneck_stage(")
    d = _at(lsp, "textDocument/definition", spec, 1, 9)  # import resnet -> the file
    assert d["uri"] == lib.resolve().as_uri()


def test_completion(lsp, tmp_path):
    spec = tmp_path / "net.cnn"
    text = "input 32x32x3\nblock unit(n, s=1) { conv f=3 n=n }\nx = conv f=3 n=4\nconv f=3 \n\nunit(\n"
    _open(lsp, spec, text)
    items = _at(lsp, "textDocument/completion", spec, 4, 10)["items"]
    by = {i["label"]: i for i in items}
    assert "f=" not in by and by["n="]["detail"].endswith("(required)")  # f is given already
    assert by["s="]["detail"].endswith("(default 1)") and "p=" in by and "act=" in by
    items = _at(lsp, "textDocument/completion", spec, 5, 1)["items"]
    labels = {i["label"] for i in items}
    assert {"conv", "pool", "fc", "relu", "unit", "x", "residual", "repeat"} <= labels
    items = _at(lsp, "textDocument/completion", spec, 6, 6)["items"]
    assert [i["label"] for i in items] == ["n=", "s="] and items[1]["detail"].endswith("(default 1)")


def test_formatting_is_cnndsl_fmt(lsp, tmp_path):
    spec = tmp_path / "net.cnn"
    _open(lsp, spec, "input 8x8x3\nconv  f=3 n=4->relu   # two\n")
    (edit,) = lsp.request("textDocument/formatting", {"textDocument": {"uri": spec.as_uri()},
                                                      "options": {"tabSize": 4, "insertSpaces": True}})
    assert edit["newText"] == "input 8x8x3\nconv f=3 n=4 -> relu   # two\n" and edit["range"]["start"] == {
        "line": 0, "character": 0}


def test_the_server_answers_while_a_big_check_runs_and_checks_only_the_newest_text(lsp, tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate

    spec = tmp_path / "big.cnn"
    text = generate("chain", 3_000)
    assert _open(lsp, spec, text) == []
    lines = text.split("\n")
    for v in range(2, 7):  # five keystrokes on line 1,500, faster than one check of 3,000 layers
        lines[1500] = f"conv f=3 n={v} p=same"
        lsp.send("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": v},
                                            "contentChanges": [{"text": "\n".join(lines)}]})
    # a request made meanwhile is answered before the check ends (it runs beside the server's loop)
    items = lsp.request("textDocument/completion", {"textDocument": {"uri": spec.as_uri()},
                                                    "position": {"line": 1, "character": 0}})["items"]
    assert "conv" in {i["label"] for i in items}
    published = [m["params"] for m in lsp.pending if m.get("method") == "textDocument/publishDiagnostics"]
    assert all(p["version"] < 6 for p in published)  # what arrived before the answer is older
    versions: list[int] = []
    while 6 not in versions:
        versions.append(lsp.notification("textDocument/publishDiagnostics", timeout=120)["version"])
    assert len(versions) < 5  # edits that came during a check were folded into the next one
    assert _at(lsp, "textDocument/hover", spec, 1501, 1)["contents"]["value"].startswith("`conv")


def test_broken_and_huge_documents_never_stop_the_server(lsp, tmp_path):
    spec = tmp_path / "bad.cnn"
    got = _open(lsp, spec, "input 32x32x3\nconv f=3 -> -> relu\n" + "(" * 5000 + "\n")
    assert got and all(d["source"] == "cnndsl" for d in got)
    big = "input 8x8x1\n" + "repeat 1000000000 { relu }\n"
    lsp.send("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 2},
                                        "contentChanges": [{"text": big}]})
    got = lsp.notification("textDocument/publishDiagnostics", timeout=60)["diagnostics"]
    assert [d["code"] for d in got] == ["too-large"]
    assert lsp.request("textDocument/hover", {"textDocument": {"uri": spec.as_uri()},
                                              "position": {"line": 5, "character": 0}}) is None
    deep = "input 8x8x3\n" + "concat { " * 3000 + "relu" + " }" * 3000 + "\n"  # deeper than Python recurses
    lsp.send("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 3},
                                        "contentChanges": [{"text": deep}]})
    got = lsp.notification("textDocument/publishDiagnostics", timeout=60)["diagnostics"]
    assert [d["code"] for d in got] == ["too-deep"]
    assert _at(lsp, "textDocument/hover", spec, 2, 3) is None
    assert _at(lsp, "textDocument/completion", spec, 2, 1)["items"]
    assert lsp.request("shutdown") is None
    lsp.send("exit", None)
    assert lsp.p.wait(timeout=30) == 0


README_SPEC = "input 32x32x3\nconv f=5 n=6 -> pool f=2 s=2\nconv f=5 n=16 -> pool f=2\nfc 120 -> relu -> fc 10\n"


def test_the_readme_shows_what_the_server_answers(lsp, tmp_path):
    """The README's `cnndsl lsp` example is made from this session with a real server; keep it so."""
    spec = tmp_path / "net.cnn"
    assert _open(lsp, spec, README_SPEC) == []
    out = ["# net.cnn in an editor with `cnndsl lsp`: each line's output shape as an inlay hint"]
    hints = lsp.request("textDocument/inlayHint", {"textDocument": {"uri": spec.as_uri()}, "range": {
        "start": {"line": 0, "character": 0}, "end": {"line": 4, "character": 0}}})
    label = {h["position"]["line"]: h["label"] for h in hints}
    out += [line + (f"  {label[i]}" if i in label else "") for i, line in enumerate(README_SPEC.split("\n")[:4])]
    out += ["# hover on the `conv` of line 2"]
    out += _at(lsp, "textDocument/hover", spec, 2, 2)["contents"]["value"].split("\n---\n")[0].strip().split("  \n")
    lsp.send("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 2}, "contentChanges": [
        {"range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}, "text": "cnv f=3\n"}]})
    out += ["# typing `cnv f=3` on line 5: the diagnostic, as `check` words it"]
    for d in lsp.notification("textDocument/publishDiagnostics")["diagnostics"]:
        s = d["range"]["start"]
        out.append(f"line {s['line'] + 1}, column {s['character'] + 1}: {d['code']}: {d['message']}")
    block = "```text\n" + "\n".join(out) + "\n```\n"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert block in readme, "the README's `cnndsl lsp` example differs from the server's answers:\n" + block
