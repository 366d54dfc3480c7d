// The cnndsl extension: highlighting comes from syntaxes/cnn.tmLanguage.json; everything else (diagnostics,
// inlay shapes, hover, definitions, symbols, completion) from the language server `cnndsl lsp` over stdio.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("cnndsl").get("command", ["cnndsl", "lsp"]);
  const server = { command, args };
  client = new LanguageClient("cnndsl", "cnndsl", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "cnn" }, { scheme: "untitled", language: "cnn" }],
  });
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
