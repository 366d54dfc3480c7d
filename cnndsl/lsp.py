"""`cnndsl lsp`: the language server, over stdin/stdout, with pygls and lsprotocol (the `lsp` extra).

A thin shell over cnndsl.editing, which runs the one pipeline: diagnostics are `check`'s (same codes,
spans and messages, `to_range` is the one place a Span becomes an LSP Range), hover, inlay hints with each
line's output shape, go to definition (blocks, values, parameters, imports, the bundled libraries
included), document symbols, completion and formatting (`cnndsl fmt`). Checking runs off the event loop,
one run per document at a time, the newest text winning, so a slow spec never blocks hover or the next
keystroke.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from . import __version__
from .diagnostics import Diagnostic, Span
from .editing import COLLECTOR, REPARSER, Analysis, analyze, complete, definition, hover


def _utf16(s: str, col: int) -> int:
    """Our 1-based code-point column -> LSP's 0-based UTF-16 offset, on line text `s`."""
    head = s[: max(col - 1, 0)]
    return len(head) + sum(1 for ch in head if ord(ch) > 0xFFFF) + max(col - 1 - len(s), 0)


def _from_utf16(s: str, char: int) -> int:
    """LSP's 0-based UTF-16 offset on line text `s` -> our 1-based code-point column."""
    units = 0
    for i, ch in enumerate(s):
        if units >= char:
            return i + 1
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(s) + 1 + max(char - units, 0)


def to_range(span: Span, lines: list[str]):
    """The one mapping from a cnndsl Span (1-based, end exclusive) to an LSP Range (0-based, UTF-16)."""
    from lsprotocol import types as t

    def pos(line: int, col: int):
        text = lines[line - 1] if 1 <= line <= len(lines) else ""
        return t.Position(line=max(line - 1, 0), character=_utf16(text, col))

    end_line, end_col = span.end_line, span.end_col
    if (end_line, end_col) <= (span.line, span.col):
        end_line, end_col = span.line, span.col + 1
    return t.Range(start=pos(span.line, span.col), end=pos(end_line, end_col))


def _uri(path: str) -> str:
    return Path(path).resolve().as_uri()


def to_lsp_diagnostic(d: Diagnostic, a: Analysis, lines: list[str]):
    """A `check` diagnostic as LSP sends it; one in an imported file is shown at the import statement."""
    from lsprotocol import types as t

    span = d.span or Span(a.path, 1, 1, 1, 2)
    if span.file != a.path:
        here = [n.span for n in d.notes if n.span and n.span.file == a.path]
        span = here[-1] if here else Span(a.path, 1, 1, 1, 2)
    related = []
    for n in d.notes:
        if n.span is not None:
            src = a.sources.get(n.span.file, "").split("\n")
            where = n.span.file if n.span.file != a.path else a.path
            from .editing import _real_file

            related.append(t.DiagnosticRelatedInformation(
                location=t.Location(uri=_uri(_real_file(where)) if where[:1] != "<" else where,
                                    range=to_range(n.span, src)), message=n.message))
    if d.help:
        related.append(t.DiagnosticRelatedInformation(
            location=t.Location(uri=_uri(a.path) if a.path[:1] != "<" else a.path, range=to_range(span, lines)),
            message=f"help: {d.help}"))
    return t.Diagnostic(
        range=to_range(span, lines), message=d.message, code=d.code, source="cnndsl",
        severity=t.DiagnosticSeverity.Error if d.severity == "error" else t.DiagnosticSeverity.Warning,
        related_information=related or None, data={"help": d.help} if d.help else None,
    )


def make_server():
    """The pygls server with every feature registered."""
    from lsprotocol import types as t
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("cnndsl", __version__, text_document_sync_kind=t.TextDocumentSyncKind.Incremental)
    latest: dict[str, Analysis] = {}
    running: dict[str, asyncio.Task] = {}
    dirty: set[str] = set()

    def path_of(uri: str) -> str:
        doc = server.workspace.get_text_document(uri)
        return doc.path if uri.startswith("file:") else uri

    async def check_loop(uri: str) -> None:
        # NOTE: one check per document at a time; edits that arrive meanwhile mark it dirty and the newest
        # text is checked next, so typing fast costs one check per pause, not one per keystroke
        try:
            while uri in dirty:
                dirty.discard(uri)
                doc = server.workspace.get_text_document(uri)
                text, version = doc.source, doc.version
                try:
                    a = await asyncio.to_thread(analyze, text, path_of(uri))
                except Exception as e:  # noqa: BLE001 - a bug in cnndsl: say so, keep serving the others
                    server.window_log_message(t.LogMessageParams(
                        type=t.MessageType.Error, message=f"cnndsl: internal error checking {uri}: {e!r}"))
                    continue
                if uri in dirty:
                    continue
                latest[uri] = a
                lines = text.split("\n")
                server.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
                    uri=uri, version=version, diagnostics=[to_lsp_diagnostic(d, a, lines) for d in a.diagnostics]))
                COLLECTOR.checked()
        finally:
            running.pop(uri, None)

    def schedule(uri: str) -> None:
        dirty.add(uri)
        if uri not in running:
            running[uri] = asyncio.get_running_loop().create_task(check_loop(uri))

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls, params: t.DidOpenTextDocumentParams):
        schedule(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls, params: t.DidChangeTextDocumentParams):
        schedule(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls, params: t.DidSaveTextDocumentParams):
        schedule(params.text_document.uri)  # an imported file may have changed on disk

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: t.DidCloseTextDocumentParams):
        latest.pop(params.text_document.uri, None)
        REPARSER.close(path_of(params.text_document.uri))
        server.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))

    def guarded(fn, *args):
        try:
            return fn(*args)
        except RecursionError:  # an expression nested thousands deep: no answer rather than no server
            return None

    def at(uri: str, position: t.Position) -> tuple[Analysis, int, int] | None:
        a = latest.get(uri)
        if a is None:
            return None
        lines = a.text.split("\n")
        line = position.line + 1
        text = lines[line - 1] if 1 <= line <= len(lines) else ""
        return a, line, _from_utf16(text, position.character)

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    def on_hover(ls, params: t.HoverParams):
        where = at(params.text_document.uri, params.position)
        found = guarded(hover, *where) if where else None
        if not found:
            return None
        text, span = found
        return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text),
                       range=to_range(span, where[0].text.split("\n")))

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls, params: t.DefinitionParams):
        where = at(params.text_document.uri, params.position)
        found = guarded(definition, *where) if where else None
        if not found:
            return None
        file, span = found
        a = where[0]
        src = a.text if file == a.path else _read(file)
        return t.Location(uri=params.text_document.uri if file == a.path else _uri(file),
                          range=to_range(span, src.split("\n")))

    @server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls, params: t.DocumentSymbolParams):
        a = latest.get(params.text_document.uri)
        if a is None:
            return []
        lines = a.text.split("\n")
        kinds = {"block": t.SymbolKind.Function, "value": t.SymbolKind.Variable, "network": t.SymbolKind.Module}
        out = []
        for s in a.symbols:
            if s.kind in kinds:
                r = to_range(s.span, lines)
                out.append(t.DocumentSymbol(name=s.name, kind=kinds[s.kind], range=r, selection_range=r,
                                            detail=s.detail))
        return out

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[" ", "(", ",", ">"]))
    def on_complete(ls, params: t.CompletionParams):
        where = at(params.text_document.uri, params.position)
        if where is None:
            return t.CompletionList(is_incomplete=False, items=[])
        kinds = {"layer": t.CompletionItemKind.Class, "block": t.CompletionItemKind.Function,
                 "value": t.CompletionItemKind.Variable, "keyword": t.CompletionItemKind.Keyword,
                 "param": t.CompletionItemKind.Property}
        items = [t.CompletionItem(label=c.label, kind=kinds[c.kind], detail=c.detail or None,
                                  insert_text=c.insert or c.label) for c in guarded(complete, *where) or []]
        return t.CompletionList(is_incomplete=False, items=items)

    @server.feature(t.TEXT_DOCUMENT_FORMATTING)
    def on_format(ls, params: t.DocumentFormattingParams):
        from .diagnostics import CompileError
        from .fmt import format_text

        doc = server.workspace.get_text_document(params.text_document.uri)
        try:
            new = format_text(doc.source, path_of(params.text_document.uri))
        except CompileError:
            return None  # a spec that does not parse is left as it is; its diagnostics say why
        if new == doc.source:
            return []
        lines = doc.source.split("\n")
        end = t.Position(line=len(lines), character=0)
        return [t.TextEdit(range=t.Range(start=t.Position(line=0, character=0), end=end), new_text=new)]

    @server.feature(t.TEXT_DOCUMENT_INLAY_HINT)
    def on_inlay_hints(ls, params: t.InlayHintParams):
        a = latest.get(params.text_document.uri)
        if a is None:
            return []
        lines = a.text.split("\n")
        first, last = params.range.start.line + 1, params.range.end.line + 1
        hints = []
        for line, (_node, shape) in sorted(a.line_shapes.items()):
            if first <= line <= last and line not in a.annotated_lines and line <= len(lines):
                code = lines[line - 1].split("#", 1)[0].rstrip()
                hints.append(t.InlayHint(position=t.Position(line=line - 1, character=_utf16(code, len(code) + 1)),
                                         label=f": {shape}", kind=t.InlayHintKind.Type, padding_left=True))
        return hints

    return server


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def serve_stdio() -> None:
    """Run the server on stdin/stdout until the client says exit."""
    COLLECTOR.enabled = True  # a long-running process: the garbage collector works between edits
    make_server().start_io()
