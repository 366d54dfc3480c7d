"""`cnndsl serve [FILE]`: the playground, a local page where editing a spec redraws the network.

A small HTTP server (the standard library's) on 127.0.0.1 by default. The page (cnndsl/static/, every
asset shipped in the package) sends the text as it is typed; the server runs the one pipeline on it
(cnndsl.editing.analyze) and answers with the diagnostics, the summary table and the diagram (DOT from
cnndsl.backends.dot, SVG from Graphviz's `dot`). Nothing from the page is ever evaluated as code; the only
file written is the served spec, when the page asks to save (atomically); the only files read are the
page's assets, the spec's folder (through `import "..."`) and the bundled libraries: an import of any
other path is refused with a diagnostic that does not show the file. Every request is bounded: its size,
its socket time, the layers it may expand to, the diagram's size and Graphviz's time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from .diagnostics import render
from .editing import COLLECTOR, analyze
from .ir.imports import import_roots
from .model import read_source
from .util import fmt_shape

MAX_BODY = 1_000_000  # bytes of one request (a 10,000-layer spec is about 200 kB)
MAX_LAYERS = 50_000  # layers one check may expand to (about 2 s)
MAX_DIAGRAM = 1_500  # layers drawn one by one; more are drawn folded, and past FOLDED_MAX not at all
FOLDED_MAX = 3_000
FOLD_ABOVE = 80  # layers past which the diagram folds each innermost block unless the page says otherwise
DOT_TIMEOUT = 10.0  # seconds Graphviz may take
SOCKET_TIMEOUT = 15.0
STATIC = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
SAMPLE = """# A sample to edit: LeNet-5, as in the lecture notes' table
network LeNet5
input 32x32x3

conv f=5 s=1 n=6 : 28x28x6     # CONV1
pool f=2 s=2 : 14x14x6         # POOL1
conv f=5 s=1 n=16 : 10x10x16   # CONV2
pool f=2 s=2 : 5x5x16          # POOL2
fc 120 : 120                   # FC3
fc 84 : 84                     # FC4
fc 10 -> softmax : 10
"""


class Playground:
    """What the server knows: the served file (or none), and the one lock that keeps checks one at a time."""

    def __init__(self, file: str | None):
        self.file = Path(file).resolve() if file else None
        self.name = Path(file).name if file else "untitled.cnn"
        self.lock = threading.Lock()
        self.text = read_source(self.file) if self.file and self.file.exists() else SAMPLE
        self.disk = _digest(self.text) if self.file and self.file.exists() else None

    def check(self, text: str, fold: bool | None = None) -> dict:
        """The page's view of a text: diagnostics, table, diagram and where each node was written."""
        path = str(self.file) if self.file else self.name
        roots = [self.file.parent] if self.file else []
        with self.lock, import_roots(roots):
            a = analyze(text, path, max_layers=MAX_LAYERS, costs=True)
            COLLECTOR.checked()
        out: dict = {"diagnostics": [], "layers": [], "totals": None, "svg": None, "lines": {}, "note": None}
        for d in a.diagnostics:
            s = d.span
            shown = _local(d, path, self.name)
            out["diagnostics"].append({
                "severity": d.severity, "code": d.code, "message": d.message, "help": d.help,
                "line": shown.line if shown else 1, "col": shown.col if shown else 1,
                "end_line": shown.end_line if shown else 1, "end_col": shown.end_col if shown else 2,
                "text": render(d, {k: v for k, v in a.sources.items() if k == path}).replace(path, self.name)
                if s else f"{d.severity}[{d.code}]: {d.message}",
            })
        m = a.model
        if m is None:
            return out
        g = m.layer_graph
        lines = _lines(g, path)
        out["lines"] = lines
        out["layers"] = [{"name": r.name, "label": r.label, "shape": fmt_shape(r.shape), "params": r.params,
                          "macs": r.macs, "line": lines.get(r.name, r.line)} for r in m.layers]
        t = m.totals
        out["totals"] = {"layers": len(m.layers), "params": t.params, "trainable": t.trainable_params,
                         "macs": t.macs, "name": m.name, "input": fmt_shape(m.input_shape),
                         "outputs": [fmt_shape(g.nodes[o]["shape"]) for o in m.outputs]}
        n = len(m.layers)
        fold = n > FOLD_ABOVE if fold is None else fold
        if n > FOLDED_MAX or (n > MAX_DIAGRAM and not fold):
            out["note"] = f"the diagram is left out: {n:,} layers is more than this page draws"
            return out
        out["svg"], out["note"] = _svg(m, fold)
        out["folded"] = fold
        return out

    def save(self, text: str, expected: str | None) -> dict:
        if self.file is None:
            return {"error": "this page edits no file: start it as `cnndsl serve FILE` to save"}
        from .backends.dot import write_atomic

        with self.lock:
            now = _digest(read_source(self.file)) if self.file.exists() else None
            if now != self.disk and expected != "overwrite":
                return {"error": f"{self.name} changed on disk since it was opened; save again to overwrite it",
                        "conflict": True}
            write_atomic(self.file, text.encode("utf-8"))
            self.disk = _digest(text)
        return {"saved": self.name}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _local(d, path: str, name: str):
    """The span to underline in the page's text: the diagnostic's own, or the note that points into it."""
    if d.span and d.span.file == path:
        return d.span
    for n in reversed(d.notes):
        if n.span and n.span.file == path:
            return n.span
    return None


def _lines(g, path: str) -> dict[str, int]:
    """The line of the page's text that each node (and each folded scope) comes from: the layer's own
    line, or the block call in this file it was expanded from."""
    out: dict[str, int] = {}
    scopes = g.graph["scopes"]
    for n, d in g.nodes(data=True):
        span = d["span"] if d["span"].file == path and not d["calls"] else next(
            (s for _, s in d["calls"] if s.file == path), d["span"])
        out[n] = span.line
        s = d["scope"]
        while s and s not in out:
            out[s] = span.line
            s = scopes[s]["parent"]
    return out


def _svg(m, fold: bool) -> tuple[str | None, str | None]:
    from .backends import dot

    exe = shutil.which("dot")
    if exe is None:
        return None, f"Graphviz's `dot` is not installed, so there is no diagram; {dot.INSTALL_HINT}"
    text = dot.to_dot(m, collapse=fold)
    try:
        r = subprocess.run([exe, "-Tsvg"], input=text.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"Graphviz took more than {DOT_TIMEOUT:g} s, so the diagram is left out"
    if r.returncode != 0:
        return None, "Graphviz could not draw this network"
    svg = r.stdout.decode("utf-8", "replace")
    return svg[svg.find("<svg"):], None


def _static(name: str) -> bytes:
    return (resources.files("cnndsl.static") / name).read_bytes()


def make_handler(pg: Playground, allowed_hosts: set[str]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "cnndsl"
        timeout = SOCKET_TIMEOUT

        def log_message(self, fmt, *args):  # quiet: the terminal shows the URL and errors only
            pass

        def _send(self, status: int, body: bytes, ctype: str):
            self.send_response(status)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                             "img-src 'self' data:; script-src 'self'; frame-ancestors 'none'")
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page went away (a reload, a newer request): nothing to answer

        def _json(self, obj, status: int = 200):
            self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

        def _trusted(self) -> bool:
            # NOTE: a page on another site can make the browser send requests to 127.0.0.1; refusing any
            # Host but ours (DNS rebinding) and any foreign Origin keeps such pages from reading or saving
            host = self.headers.get("Host", "")
            origin = self.headers.get("Origin")
            return host in allowed_hosts and (origin is None or origin in {f"http://{h}" for h in allowed_hosts})

        def do_GET(self):
            if not self._trusted():
                return self._json({"error": "forbidden"}, HTTPStatus.FORBIDDEN)
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(200, _static("index.html"), STATIC["index.html"])
            if path.startswith("/static/") and path[8:] in STATIC:
                return self._send(200, _static(path[8:]), STATIC[path[8:]])
            if path == "/api/spec":
                return self._json({"name": pg.name, "text": pg.text, "file": pg.file is not None})
            return self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)

        def do_POST(self):
            if not self._trusted():
                return self._json({"error": "forbidden"}, HTTPStatus.FORBIDDEN)
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                return self._json({"error": "expected application/json"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            try:
                size = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._json({"error": "a body needs its Content-Length"}, HTTPStatus.LENGTH_REQUIRED)
            if not 0 <= size <= MAX_BODY:
                return self._json({"error": f"the request is larger than {MAX_BODY:,} bytes"},
                                  HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            try:
                req = json.loads(self.rfile.read(size).decode("utf-8"))
                text = req["text"]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                return self._json({"error": "expected {\"text\": \"...\"}"}, HTTPStatus.BAD_REQUEST)
            if self.path == "/api/check":
                fold = req.get("fold")
                try:
                    return self._json(pg.check(text, fold if isinstance(fold, bool) else None))
                except Exception:  # noqa: BLE001 - a bug in cnndsl: the page says so, the server goes on
                    return self._json({"error": "internal error in cnndsl: please report it with the spec"},
                                      HTTPStatus.INTERNAL_SERVER_ERROR)
            if self.path == "/api/save":
                res = pg.save(text, req.get("mode"))
                return self._json(res, HTTPStatus.CONFLICT if res.get("conflict") else 200)
            return self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)

        do_HEAD = do_GET

    return Handler


def make_server(file: str | None, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    pg = Playground(file)
    httpd = ThreadingHTTPServer((host, port), None)
    port = httpd.server_address[1]
    allowed = {f"{host}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"}
    httpd.RequestHandlerClass = make_handler(pg, allowed)
    httpd.daemon_threads = True
    return httpd


def run(file: str | None, host: str, port: int, log) -> int:
    """Serve until interrupted; `log` gets the URL. Returns the exit code."""
    COLLECTOR.enabled = True  # a long-running process: the garbage collector works between edits
    httpd = make_server(file, host, port)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{httpd.server_address[1]}/"
    what = f"editing {file} (saved only when you press Save)" if file else "a scratch spec (no file)"
    log(f"cnndsl playground: {url}  {what}; Ctrl-C stops it")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
