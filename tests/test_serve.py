"""`cnndsl serve`: the playground, tested in a real headless browser (the system's Chromium driven by
Playwright; `./dev test` installs it as it installs `dot`) and at the HTTP level for its bounds: the hosts
and origins it answers, request sizes, the files it may read and write."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cnndsl.serve import MAX_BODY, make_server

ROOT = Path(__file__).resolve().parent.parent
LENET = (ROOT / "specs" / "lenet5.cnn").read_text()


@pytest.fixture
def served(tmp_path):
    """A playground serving tmp/net/lenet5.cnn on a free port; yields (base URL, spec path)."""
    folder = tmp_path / "net"
    folder.mkdir()
    spec = folder / "lenet5.cnn"
    spec.write_text(LENET)
    httpd = make_server(str(spec), "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", spec
    httpd.shutdown()
    httpd.server_close()


def _post(url: str, body: bytes, headers=None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def _check(base: str, text: str) -> dict:
    code, j = _post(base + "/api/check", json.dumps({"text": text}).encode())
    assert code == 200
    return j


def test_check_answers_diagnostics_table_and_diagram(served):
    base, _ = served
    j = _check(base, LENET)
    assert j["diagnostics"] == [] and j["totals"]["params"] == 62006  # LeNet-5's count (README, the notes' table)
    assert [r["shape"] for r in j["layers"]][:2] == ["28x28x6", "14x14x6"] and j["svg"].startswith("<svg")
    assert j["lines"]["conv1"] == LENET.split("\n").index("conv f=5 s=1 n=6 : 28x28x6     # CONV1") + 1
    j = _check(base, "input 8x8x3\nconv f=3 n=4\ncnv f=3\n")
    (d,) = j["diagnostics"]
    assert (d["code"], d["line"], d["col"], d["end_col"]) == ("unknown-layer", 3, 1, 4)
    assert d["text"].startswith("lenet5.cnn:3:1: error[unknown-layer]")


def test_imports_outside_the_folder_are_refused_without_showing_the_file(served, tmp_path):
    base, spec = served
    (tmp_path / "secret.cnn").write_text("block leak { conv f=1 n=TOPSECRET }\n")
    (spec.parent / "mine.cnn").write_text("block mine { conv f=1 n=4 }\n")
    j = _check(base, 'import "../secret.cnn"\nimport "/etc/passwd"\nimport "mine.cnn"\nimport resnet\n'
                     "input 8x8x3\nmine\n")
    assert [(d["code"], d["line"]) for d in j["diagnostics"]] == [("import-refused", 1), ("import-refused", 2)]
    assert "TOPSECRET" not in json.dumps(j) and "root:" not in json.dumps(j)
    # refused before it is opened: reading this pipe would block, and the request would time out
    os.mkfifo(tmp_path / "pipe.cnn")
    j = _check(base, 'import "../pipe.cnn"\ninput 8x8x3\nrelu\n')
    assert [d["code"] for d in j["diagnostics"]] == ["import-refused"]
    os.symlink(tmp_path / "secret.cnn", spec.parent / "link.cnn")  # a link out of the folder is refused too
    j = _check(base, 'import "link.cnn"\ninput 8x8x3\nleak\n')
    assert j["diagnostics"][0]["code"] == "import-refused" and "TOPSECRET" not in json.dumps(j)


def test_requests_are_bounded_and_foreign_pages_refused(served):
    base, spec = served
    # a body larger than the bound is refused from its Content-Length, before it is read
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
    conn.putrequest("POST", "/api/check")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(MAX_BODY + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert _post(base + "/api/check", b"{}")[0] == 400
    assert _post(base + "/api/check", b'{"text": 1}')[0] == 400
    assert _post(base + "/api/check", b"text", {"Content-Type": "text/plain"})[0] == 415
    # another site's page (a foreign Origin) or a rebound DNS name (a foreign Host) gets nothing
    assert _post(base + "/api/save", b'{"text": "x"}', {"Origin": "http://evil.example"})[0] == 403
    req = urllib.request.Request(base + "/api/spec", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 403
    for path in ("/static/../serve.py", "/static/__init__.py", "/etc/passwd", "/api/nothing"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path, timeout=30)
        assert e.value.code == 404
    assert spec.read_text() == LENET  # nothing above wrote the file
    j = _check(base, "input 8x8x1\nrepeat 1000000000 { relu }\n")
    assert [d["code"] for d in j["diagnostics"]] == ["too-large"]


def test_save_is_explicit_and_atomic(served):
    base, spec = served
    _check(base, "input 8x8x3\nconv f=3 n=4\n")
    assert spec.read_text() == LENET  # checking never writes
    code, j = _post(base + "/api/save", json.dumps({"text": "input 8x8x3\nconv f=3 n=4\n"}).encode())
    assert code == 200 and j == {"saved": "lenet5.cnn"}
    assert spec.read_text() == "input 8x8x3\nconv f=3 n=4\n"
    assert sorted(p.name for p in spec.parent.iterdir()) == ["lenet5.cnn"]  # no temporary file left
    spec.write_text("input 8x8x3\n# changed by another editor\n")
    code, j = _post(base + "/api/save", json.dumps({"text": "input 8x8x3\n"}).encode())
    assert code == 409 and j["conflict"] and "changed on disk" in j["error"]
    assert spec.read_text() == "input 8x8x3\n# changed by another editor\n"


# --- in a real browser ---------------------------------------------------------------------------


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CNNDSL_NO_BROWSER") == "1":
            pytest.skip("CNNDSL_NO_BROWSER=1: the browser test is switched off")
        pytest.fail("Chromium is not installed: `./dev test` installs it (apt-get install chromium), "
                    "or set CNNDSL_NO_BROWSER=1 to switch this test off knowingly")
    return exe


def _wait(page, js: str, timeout: float = 30):
    # polls with evaluate: the page's Content-Security-Policy forbids the eval that wait_for_function uses
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if page.evaluate(js):
            return
        time.sleep(0.02)
    raise AssertionError(f"the page never got to: {js}")


@pytest.fixture
def page(served):
    from playwright.sync_api import sync_playwright

    exe = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 860})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(served[0] + "/")
        _wait(pg, "window.cnndsl && window.cnndsl.updates >= 1")
        yield pg
        assert errors == []
        browser.close()


def _rows(page) -> list[list[str]]:
    return page.evaluate("[...document.querySelectorAll('#summary tbody tr')].map(r => "
                         "[...r.cells].map(c => c.textContent))")


def test_typing_redraws_the_table_and_diagram_and_errors_appear_at_their_line(page, served, tmp_path):
    base, spec = served
    assert page.input_value("#editor") == LENET
    assert _rows(page)[0] == ["conv1", "conv 5x5, s=1, n=6", "28x28x6", "456", "352,800"]
    nodes = page.evaluate("document.querySelectorAll('#diagram g.node').length")
    assert nodes >= 9  # the input, 8 layers (and the legend)

    # type a new layer at the end: the table and the diagram grow with it
    page.click("#editor")
    page.keyboard.press("Control+End")
    page.keyboard.type("dropout 0.5")
    _wait(page, "document.querySelectorAll('#summary tbody tr').length === 9")
    assert _rows(page)[-1][:3] == ["dropout1", "dropout 0.5", "10"]
    assert page.evaluate("[...document.querySelectorAll('#diagram g.node title')].some(t => "
                         "t.textContent === 'dropout1')")

    # a mistake: underlined where it is, listed with check's text
    page.keyboard.press("Enter")
    page.keyboard.type("conv f=3 n=8")
    _wait(page, "document.querySelector('#diagnostics li.error') !== null && "
                "document.querySelector('#diagnostics').textContent.includes('shape-mismatch')")
    line = LENET.count("\n") + 2
    text = page.inner_text("#diagnostics li.error")
    assert text.startswith(f"lenet5.cnn:{line}:1: error[shape-mismatch]: `conv` needs an HxWxC volume")
    mark = page.evaluate("(() => { const m = document.querySelector('#backdrop mark'); "
                         "const before = document.querySelector('#backdrop').textContent.slice(0, "
                         "document.querySelector('#backdrop').textContent.indexOf(m.textContent)); "
                         "return [m.textContent, before.split('\\n').length]; })()")
    assert mark == ["conv f=3 n=8", line]
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot))
    if os.environ.get("CNNDSL_UPDATE_GOLDENS"):
        shutil.copy(shot, ROOT / "docs" / "img" / "playground.png")
    assert spec.read_text() == LENET  # typing never saves


def test_clicking_a_node_selects_its_line_and_back(page, served):
    page.click("#diagram g.node:has(title:text-is('pool2'))")
    start, end = page.evaluate("[document.getElementById('editor').selectionStart, "
                               "document.getElementById('editor').selectionEnd]")
    assert LENET[start:end] == "pool f=2 s=2 : 5x5x16          # POOL2 = 400 features"
    assert page.evaluate("[...document.querySelectorAll('#diagram g.node.sel title')].map(t => t.textContent)") \
        == ["pool2"]
    # the reverse: put the cursor on a line, its node and row are marked
    line = next(i for i, t in enumerate(LENET.split("\n"), 1) if t.startswith("fc 10 -> softmax : 10"))
    page.evaluate(f"(() => {{ const e = document.getElementById('editor'); const at = e.value.split('\\n')"
                  f".slice(0, {line - 1}).join('\\n').length + 2; e.setSelectionRange(at, at); "
                  f"e.dispatchEvent(new Event('click')); }})()")
    assert sorted(page.evaluate("[...document.querySelectorAll('#diagram g.node.sel title')]"
                                ".map(t => t.textContent)")) == ["fc3", "softmax1"]
    assert [r[0] for r in page.evaluate("[...document.querySelectorAll('#summary tbody tr.sel')]"
                                        ".map(r => [r.cells[0].textContent])")] == ["fc3", "softmax1"]


def test_save_button_writes_the_file(page, served):
    base, spec = served
    page.click("#editor")
    page.keyboard.press("Control+End")
    page.keyboard.type("relu")
    _wait(page, "document.querySelectorAll('#summary tbody tr').length === 9")
    assert spec.read_text() == LENET
    page.click("#save")
    _wait(page, "document.getElementById('status').textContent === 'saved lenet5.cnn'")
    assert spec.read_text() == LENET + "relu"


def test_serve_usage_errors(cli, tmp_path):
    import socket

    r = cli("serve", str(tmp_path))
    assert r.code == 2 and "not a regular file" in r.err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = cli("serve", "--port", str(s.getsockname()[1]), timeout=60)
    assert r.code == 2 and r.err.startswith("cnndsl: error: cannot serve on 127.0.0.1:") and "Traceback" not in r.err
