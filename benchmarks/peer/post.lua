-- wrk -s post.lua: every request is the same small chat completion (the mock answers it at once).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"cascade-default","messages":[{"role":"user","content":"Hello"}]}'
