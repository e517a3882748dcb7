// A fake OpenAI-compatible upstream on 127.0.0.1 for stream_check.mjs and server_check.mjs: it stands where
// a real provider would, behind examples/server, so that no real provider is ever called.
//
//   node upstream.mjs <text>      prints "listening on <port>", then serves POST /v1/chat/completions
//
// What it answers depends on the last user message:
//   contains "echo"    the request body it received, as JSON, for its text (streamed or whole): a client
//                      can check what the server forwarded (model, response_format, sampling, extra fields)
//   contains "refuse"  a 400 error (the server's chain then answers from its template)
//   contains "cut"     two deltas ("Partial ", "answer"), then the connection is destroyed mid-stream
//   contains "nodone"  the same two deltas, then a clean end with no finish_reason and no [DONE]
//   anything else      <text> in several deltas, with a 700 ms pause after the first (so a client can
//                      tell a flushed stream from a buffered one), then the finish chunk, the usage chunk
//                      when stream_options.include_usage asks for it, and [DONE]; or, for a request that
//                      does not stream, one chat.completion.
// A request that carries a key (an authorization header) is refused: the server in between holds none.

import http from 'node:http';

const text = process.argv[2];
if (text === undefined) {
  console.error('usage: node upstream.mjs <text>');
  process.exit(2);
}

// <text> in about five deltas, split between code points.
function deltas(s) {
  const cps = Array.from(s);
  const n = Math.max(1, Math.ceil(cps.length / 5));
  const out = [];
  for (let i = 0; i < cps.length; i += n) out.push(cps.slice(i, i + n).join(''));
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function chunk(model, delta, finish = null) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-upstream',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
}

function lastUser(messages) {
  for (let i = messages.length - 1; i >= 0; --i)
    if (messages[i].role === 'user') return String(messages[i].content);
  return '';
}

async function stream(req, res, body) {
  const model = body.model ?? 'm';
  const prompt = lastUser(body.messages ?? []);
  const answer = prompt.includes('echo') ? JSON.stringify(body) : text;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.write(chunk(model, { role: 'assistant', content: '' }));
  if (prompt.includes('cut') || prompt.includes('nodone')) {
    for (const d of ['Partial ', 'answer']) {
      res.write(chunk(model, { content: d }));
      await sleep(20);
    }
    await sleep(100);
    if (prompt.includes('cut')) res.socket.destroy();
    else res.end();
    return;
  }
  const parts = deltas(answer);
  for (let i = 0; i < parts.length; ++i) {
    res.write(chunk(model, { content: parts[i] }));
    await sleep(i === 0 && answer === text ? 700 : 20);
  }
  res.write(chunk(model, {}, 'stop'));
  if (body.stream_options?.include_usage)
    res.write(`data: ${JSON.stringify({
      id: 'chatcmpl-upstream', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model,
      choices: [], usage: { prompt_tokens: 11, completion_tokens: parts.length, total_tokens: 11 + parts.length },
    })}\n\n`);
  res.end('data: [DONE]\n\n');
}

function whole(res, body) {
  const answer = lastUser(body.messages ?? []).includes('echo') ? JSON.stringify(body) : text;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({
    id: 'chatcmpl-upstream', object: 'chat.completion', created: 1700000000, model: body.model ?? 'm',
    system_fingerprint: 'fp_upstream',
    choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 },
  }));
}

function refuse(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: 'invalid_request_error' } }));
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (raw += d));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return refuse(res, 404, `no route ${req.method} ${req.url}`);
    if (req.headers.authorization !== undefined) return refuse(res, 400, 'a key reached the upstream; the server in between holds none');
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return refuse(res, 400, 'the body is not JSON');
    }
    console.error(`upstream: stream=${body.stream === true} prompt=${JSON.stringify(lastUser(body.messages ?? []))}`);
    if (lastUser(body.messages ?? []).includes('refuse')) return refuse(res, 400, 'this upstream refuses the request');
    if (body.stream === true) stream(req, res, body).catch((e) => console.error(`upstream: ${e}`));
    else whole(res, body);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
