#!/usr/bin/env python3
"""The audit server over HTTP on loopback, its providers pointed at a fake upstream (upstream.py):
answers by Groq in each language, Groq blocked (1010) then DeepSeek, a 300-character answer refused and the
next tier used, every LLM down then the template in the visitor's language, the second identical audit from
the cache with no upstream request; every kind of bad input with its status and message, the server serving
on; signed links (tampered, expired); the rate limit; /metrics; the refusal to start with the example secret.

  server_test.py <cascade-audit> <questionnaire.json> <work dir>

Exits non-zero on the first failed check, saying which."""
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

server_bin, questions_path, work = sys.argv[1], sys.argv[2], sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(work, exist_ok=True)
SECRET = "test-secret-0123456789abcdef"
KEYS = ["gsk_test_key_%d_secret" % i for i in range(1, 6)]
procs = []
checks = 0


def fail(what):
    print("FAIL:", what, flush=True)
    for p in procs:
        p.kill()
    sys.exit(1)


def check(cond, what):
    global checks
    if not cond:
        fail(what)
    checks += 1
    print("ok:", what, flush=True)


def start(cmd, env=None):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    procs.append(p)
    line = p.stdout.readline()
    m = re.match(r"listening on (\d+)", line)
    if not m:
        fail("%s did not start: %r %s" % (cmd[0], line, p.stderr.read() if p.poll() is not None else ""))
    return p, int(m.group(1))


def request(port, method, path, body=None, headers=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


upstream, up_port = start([sys.executable, os.path.join(here, "upstream.py")])


def modes(**m):
    request(up_port, "POST", "/control", m)


def counts():
    return json.loads(request(up_port, "GET", "/counts")[2])


q = json.load(open(questions_path, encoding="utf-8"))
questions = q["questions"]


def answers(variant=0):
    """A complete set of answers: option `variant` (mod the count) of each question."""
    return {x["id"]: x["options"][(variant + i) % len(x["options"])]["value"] for i, x in enumerate(questions)}


env = dict(os.environ)
for k in list(env):
    if k.startswith(("GROQ_", "DEEPSEEK_", "GOOGLE_", "VERTEX_", "AUDIT_")):
        del env[k]
env.update({"AUDIT_PORT": "0", "AUDIT_DB": os.path.join(work, "audit.db"), "AUDIT_SECRET": SECRET, "AUDIT_QUESTIONS": questions_path,
            "AUDIT_RATE_BURST": "1000", "GROQ_BASE_URL": "http://127.0.0.1:%d/groq" % up_port,
            "DEEPSEEK_BASE_URL": "http://127.0.0.1:%d/deepseek" % up_port, "DEEPSEEK_API_KEY": "sk-test-deepseek-secret"})
for i, k in enumerate(KEYS):
    env["GROQ_API_KEY_%d" % (i + 1)] = k
for db in ("audit.db", "audit2.db"):
    for suffix in ("", "-wal", "-shm"):  # a fresh database: no report or cached answer from an earlier run
        if os.path.exists(os.path.join(work, db + suffix)):
            os.remove(os.path.join(work, db + suffix))
server, port = start([server_bin], env)


def audit(lang, variant, expect=200):
    status, headers, body = request(port, "POST", "/api/audit", {"lang": lang, "answers": answers(variant)})
    if status != expect:
        fail("audit %s/%d: status %d (want %d): %s" % (lang, variant, status, expect, body))
    return json.loads(body)


def report(url):
    return request(port, "GET", url)


# The page, in the language asked for.
status, headers, page = request(port, "GET", "/?lang=ru")
check(status == 200 and "<form" in page and 'lang="ru"' in page, "GET /?lang=ru serves the questionnaire in Russian")
status, headers, page = request(port, "GET", "/", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
check(status == 200 and 'lang="es"' in page, "GET / with Accept-Language es serves it in Spanish")

# A complete audit in each language, answered by Groq.
for i, lang in enumerate(["en", "ru", "es"]):
    r = audit(lang, i)
    check(r["provider"] == "groq1" and not r["cached"], "an audit in %s is answered by groq1" % lang)
    check(0 <= r["score"] <= 100 and sum(a["points"] for a in r["breakdown"]) == r["score"], "its score is the sum of its breakdown (%s)" % lang)
    status, _, html = report(r["report_url"])
    check(status == 200 and "Inferno Drainer" in html and "<h2>" in html, "its report link renders the Markdown as HTML (%s)" % lang)

# An answer of 300 characters is refused: the next tier writes the report.
modes(groq="short", deepseek="ok")
before = counts()
r = audit("en", 3)
after = counts()
check(r["provider"] == "deepseek" and after.get("groq", 0) > before.get("groq", 0), "a 300-character Groq answer is refused and DeepSeek answers")

# Groq blocked by Cloudflare (1010): DeepSeek answers; Groq is not asked again while its circuit is open.
modes(groq="1010", deepseek="ok")
r = audit("ru", 4)
check(r["provider"] == "deepseek", "with Groq blocked (1010) DeepSeek answers")
before = counts()
r = audit("es", 5)
after = counts()
check(r["provider"] == "deepseek" and after.get("groq", 0) == before.get("groq", 0), "and the next audit does not ask Groq at all")

# Model output is never markup: raw HTML is dropped, javascript: links lose their URL, text is escaped.
modes(groq="ok", deepseek="xss")
r = audit("en", 9)
status, _, html = report(r["report_url"])
check(r["provider"] == "deepseek" and status == 200 and "Inferno Drainer" in html, "a report whose Markdown carries HTML still renders")
check("<script>window.__xss" not in html and "onerror=" not in html and 'href="javascript:' not in html,
      "no <script>, onerror or javascript: link from the model output reaches the page")

# Every LLM down (Vertex has no credentials here): the template, in the visitor's language.
modes(groq="500", deepseek="500")
for lang, variant, title in [("ru", 6, "Твоя цифровая крепость"), ("es", 7, "Tu fortaleza digital"), ("en", 8, "Your digital fortress")]:
    r = audit(lang, variant)
    status, _, html = report(r["report_url"])
    check(r["provider"] == "fallback-template" and status == 200 and title in html and str(r["score"]) in html,
          "every LLM down: the template writes the %s report (%s: %d/100)" % (lang, title, r["score"]))

# The second identical audit comes from the cache, with no upstream request.
modes(groq="ok", deepseek="ok")
before = counts()
r = audit("en", 0)
after = counts()
check(r["cached"] and r["provider"] == "groq1" and after == before, "a repeated audit is answered from the cache, no upstream request")

# Bad input: each gets its status and a clear message; the server serves on.
def bad(body, want_status, want_text, what, raw=False):
    data = body if raw else json.dumps(body).encode()
    status, headers, text = request(port, "POST", "/api/audit", data)
    check(status == want_status and want_text in text, "%s: %d %s" % (what, status, text[:120]))
    check(request(port, "GET", "/healthz")[0] == 200, "the server still serves after: " + what)


first = questions[0]
allowed = [o["value"] for o in first["options"]]
missing = answers(0)
del missing[first["id"]]
bad({"lang": "en", "answers": missing}, 400, first["id"], "a missing answer names the question")
bad({"lang": "en", "answers": dict(answers(0), **{first["id"]: "nope"})}, 400, allowed[0], "an unknown value names the allowed values")
bad({"lang": "en", "answers": dict(answers(0), **{first["id"]: 3})}, 400, first["id"], "a value of the wrong type")
bad({"lang": "en", "answers": answers(0), "admin": True}, 400, "admin", "an unknown field")
bad(b"{" + b" " * (1024 * 1024) + b"}", 413, "larger than", "a 1 MiB body", raw=True)
bad(b'{"lang": "en", "answers": ', 400, "JSON", "invalid JSON", raw=True)
bad({"lang": "xx", "answers": answers(0)}, 400, "lang", "an unknown language")

# Signed links: tampered, expired, made up.
r = audit("en", 0)
url = r["report_url"]
check(report(url)[0] == 200, "a fresh report link opens")
tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
status, _, html = report(tampered)
check(status == 403 and "not valid" in html, "a tampered signature gets 403")
path = url.split("?")[0]
expired = path + "?expires=1000000000"
expired += "&sig=" + hmac.new(SECRET.encode(), expired.encode(), hashlib.sha256).hexdigest()
status, _, html = report(expired)
check(status == 403 and "expired" in html, "an expired (correctly signed) link gets 403")
guessed = "/report/" + "0" * 32 + "?expires=4000000000"
guessed += "&sig=" + hmac.new(SECRET.encode(), guessed.encode(), hashlib.sha256).hexdigest()
check(report(guessed)[0] == 404, "a signed link to a report that does not exist gets 404")
check(re.fullmatch(r"/report/[0-9a-f]{32}", path) is not None, "report ids are 128 random bits")

# Metrics, through the library's exposition.
status, _, metrics = request(port, "GET", "/metrics")
check(status == 200 and 'label="groq1"' in metrics and 'label="fallback-template"' in metrics and "audit_http_requests_total" in metrics,
      "/metrics has answers by label and requests by route")

# No key in anything the server said.
server.terminate()
out, err = server.communicate(timeout=10)
for k in KEYS + ["sk-test-deepseek-secret"]:
    check(k not in out and k not in err and k not in metrics, "the key %s... never appears in the server's output" % k[:8])

# The rate limit: a second server, 2 audits at once, then 429 with retry-after.
env2 = dict(env, AUDIT_RATE_BURST="2", AUDIT_RATE_PER_MINUTE="1", AUDIT_DB=os.path.join(work, "audit2.db"))
server2, port = start([server_bin], env2)
audit("en", 1)
audit("en", 2)
status, headers, text = request(port, "POST", "/api/audit", {"lang": "en", "answers": answers(3)})
retry = {k.lower(): v for k, v in headers.items()}.get("retry-after")
check(status == 429 and retry is not None and int(retry) >= 1 and "try again" in text, "a rate-limited client gets 429 with retry-after %s" % retry)
check(request(port, "GET", "/healthz")[0] == 200, "the server still serves after a 429")
server2.terminate()

# The example secret is refused outside --dev; no secret at all too.
for extra, what in [({"AUDIT_SECRET": "example-secret-change-me"}, "the example secret"), ({"AUDIT_SECRET": ""}, "no secret")]:
    p = subprocess.run([server_bin], env=dict(env, **extra), capture_output=True, text=True, timeout=30)
    check(p.returncode == 2 and "AUDIT_SECRET" in p.stderr, "it refuses to start with %s: %s" % (what, p.stderr.strip()))

upstream.kill()
print("all %d checks passed" % checks)
