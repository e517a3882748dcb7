#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream for tests/ask/ask_test.sh.

    fake_upstream.py LOG_FILE

Binds 127.0.0.1 on a free port and prints "port N" on its first line. What a POST .../chat/completions
gets depends on the first segment of its path, so each test case points a base URL at its own behaviour:

    /ok/...          200 with ANSWER and USAGE
    /ratelimit/...   429 as Groq sends it (tokens per minute), retry-after: 30
    /blocked/...     403 from Cloudflare, body "error code: 1010"
    /error500/...    500 whose message echoes the key it was sent (a careless upstream)
    /limitfirst/...  429 for the key gsk_test_secret_1, 200 for any other key
    /slow/...        waits 30 s, then 200 (a client with a shorter deadline has given up by then)

Every request is appended to LOG_FILE as one JSON line: path, the key's index (the digit after
"gsk_test_secret_", or "deepseek"), and the request body.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Paris is the capital of France.\nIt has been since 987."
USAGE = {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59}
LOG_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test prints what it checks
        pass

    def send(self, status, body, content_type="application/json", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def answer(self):
        body = {
            "id": "chatcmpl-fake-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake-model-1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": USAGE,
        }
        self.send(200, json.dumps(body))

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        mode = self.path.strip("/").split("/")[0]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        who = key.removeprefix("gsk_test_secret_") if key.startswith("gsk_test_secret_") else (
            "deepseek" if key.startswith("sk_test_deepseek") else "?")
        with LOG_LOCK, open(sys.argv[1], "a", encoding="utf-8") as log:
            log.write(json.dumps({"path": self.path, "key": who, "body": body}) + "\n")

        if not self.path.endswith("/chat/completions"):
            self.send(404, json.dumps({"error": {"message": "no such path " + self.path}}))
        elif mode == "ok":
            self.answer()
        elif mode == "ratelimit" or (mode == "limitfirst" and key == "gsk_test_secret_1"):
            message = ("Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_fake` service tier "
                       "`on_demand` on tokens per minute (TPM): Limit 12000, Used 11500, Requested 3042. "
                       "Please try again in 30s. Visit https://console.groq.com/docs/rate-limits for more information.")
            self.send(429, json.dumps({"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}}),
                      headers=[("retry-after", "30"), ("x-ratelimit-limit-tokens", "12000"),
                               ("x-ratelimit-remaining-tokens", "0"), ("x-ratelimit-reset-tokens", "30s")])
        elif mode == "limitfirst":
            self.answer()
        elif mode == "blocked":
            self.send(403, "error code: 1010", content_type="text/plain; charset=UTF-8",
                      headers=[("server", "cloudflare"), ("cf-ray", "8f0000000000fake-AMS")])
        elif mode == "error500":
            self.send(500, json.dumps({"error": {"message": "internal error while serving key " + key,
                                                 "type": "server_error"}}))
        elif mode == "slow":
            time.sleep(30)
            self.answer()
        else:
            self.send(404, json.dumps({"error": {"message": "unknown mode " + mode}}))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("port", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
