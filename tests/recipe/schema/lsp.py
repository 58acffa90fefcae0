"""A minimal Language Server Protocol client for yaml-language-server (what VS Code and other editors run),
so that the editor schema is tested with the program editors use, not only with a JSON Schema library.

`make setup` installs the server with npm into .tools/yls (pinned in the Makefile).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SERVER = ROOT / ".tools" / "yls" / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"


class YamlLanguageServer:
    """One server process; `diagnostics(text)` and `hover(text, line, col)` open a document and ask."""

    def __init__(self, schema: Path) -> None:
        if not SERVER.is_file():
            raise RuntimeError(f"yaml-language-server is not installed at {SERVER}: run `make setup` (npm install)")
        self.schema_uri = schema.resolve().as_uri()
        self.proc = subprocess.Popen(["node", str(SERVER), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.documents = 0
        self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {
            "textDocument": {"hover": {"contentFormat": ["plaintext"]}, "publishDiagnostics": {}},
            "workspace": {"configuration": True}}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": self.settings()})

    def settings(self) -> dict[str, Any]:
        return {"yaml": {"validate": True, "hover": True, "completion": True, "format": {"enable": False},
                         "schemas": {self.schema_uri: "*.yaml"}, "schemaStore": {"enable": False}}}

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired, TimeoutError):
            self.proc.kill()

    # --- the protocol ---------------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while (line := self.proc.stdout.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if not length:
            raise RuntimeError("yaml-language-server closed its output")
        message = json.loads(self.proc.stdout.read(length))
        if message.get("method") == "workspace/configuration":  # the server asks for its settings
            items = message["params"]["items"]
            self.send({"id": message["id"], "result": [self.settings()["yaml"] if i.get("section") == "yaml" else {}
                                                       for i in items]})
        elif "id" in message and "method" in message:  # any other request from the server: an empty answer
            self.send({"id": message["id"], "result": None})
        return message

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == self.next_id and "method" not in message:
                return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    # --- what an editor shows -----------------------------------------------------------------------------
    def open(self, text: str, path: Path | None = None) -> str:
        """A new document: `path`'s URI (its modeline's relative schema path resolves as in an editor)."""
        self.documents += 1
        uri = path.resolve().as_uri() if path else f"file:///tmp/peftrun-lsp/recipe{self.documents}.yaml"
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1,
                                                              "text": text}})
        return uri

    def diagnostics(self, text: str, path: Path | None = None, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The diagnostics the server publishes for a new document holding `text` (at `path`, if given)."""
        uri = self.open(text, path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive()
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]
        raise TimeoutError(f"no diagnostics for {uri} within {timeout} s")

    def hover(self, text: str, line: int, character: int) -> str:
        """The hover text at a position of a new document holding `text` ('' when there is none)."""
        uri = self.open(text)
        result = self.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                     "position": {"line": line, "character": character}})
        contents = (result or {}).get("contents", "")
        return contents.get("value", "") if isinstance(contents, dict) else str(contents)
