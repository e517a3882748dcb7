#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream on 127.0.0.1 for the audit server's tests: each provider (the first
path segment: /groq/..., /deepseek/...) answers as its mode says, and counts its requests.

  POST /control {"groq": "ok", "deepseek": "500"}   set modes (ok, short, xss, 1010, 500)
  GET  /counts                                     {"groq": 3, "deepseek": 1}
  POST /<provider>/chat/completions                 an answer, or the mode's failure

Prints "listening on <port>" once bound (port 0: any free one)."""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

modes = {"groq": "ok", "deepseek": "ok"}
counts = {}
lock = threading.Lock()

REPORT = ("## Findings\n\nYour seed phrase is kept offline, which defeats most remote theft. Approvals granted to old "
          "contracts are the gap: drainers such as Inferno Drainer empty wallets through exactly those. Revoke them.\n\n"
          "## What to do\n\n1. Revoke token approvals you no longer use.\n2. Check every address character by character: "
          "address poisoning copies the first and last characters of addresses you used.\n3. Install wallet extensions "
          "only from the wallet's own site.\n")
XSS = ("## Report\n\n<script>window.__xss = 1</script>\n\n<img src=x onerror=\"window.__xss = 2\">\n\n"
       "[a link](javascript:window.__xss=3)\n\n" + REPORT)


def answer(provider, text):
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1764547200, "model": provider + "-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 812, "completion_tokens": 301, "total_tokens": 1113}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/counts":
            with lock:
                self.send(200, json.dumps(counts))
        else:
            self.send(404, "{}")

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if self.path == "/control":
            with lock:
                modes.update(json.loads(body))
            self.send(200, "{}")
            return
        provider = self.path.strip("/").split("/")[0]
        with lock:
            counts[provider] = counts.get(provider, 0) + 1
            mode = modes.get(provider, "500")
        if mode == "ok":
            self.send(200, json.dumps(answer(provider, REPORT)))
        elif mode == "xss":
            self.send(200, json.dumps(answer(provider, XSS)))
        elif mode == "short":
            self.send(200, json.dumps(answer(provider, "Your setup looks fine. " * 13)))  # 299 characters
        elif mode == "1010":
            self.send(403, "error code: 1010", "text/plain; charset=UTF-8")
        else:
            self.send(500, json.dumps({"error": {"message": "Internal error", "type": "server_error"}}))


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
print("listening on", server.server_address[1], flush=True)
server.serve_forever()
