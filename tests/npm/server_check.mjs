// The official openai client (the version pinned in package.json) against examples/server, which sits in
// front of upstream.mjs. Exits 0 only if every check passes.
//
//   node server_check.mjs <baseURL, e.g. http://127.0.0.1:8080/v1> <the text the upstream answers>
//                         <the upstream model of cascade-default> <that of cascade-cheap>
//
// Checks: a whole answer (the upstream's id, created and system_fingerprint, usage, the x-cascade-label
// header); a streamed answer; JSON mode and the sampling fields reaching the upstream as the client sent
// them (the upstream echoes the body it received); a model that names no chain reaching the upstream as
// the model to ask for; "cascade-cheap" picking its chain; an upstream refusal answered by the template;
// models.list(); 400 as BadRequestError, 404 as NotFoundError, 405, 413; /metrics and /healthz.

import OpenAI from 'openai';

const [baseURL, expected, defaultModel, cheapModel] = process.argv.slice(2);
if (!baseURL || expected === undefined || !defaultModel || !cheapModel) {
  console.error('usage: node server_check.mjs <baseURL> <expected text> <default upstream model> <cheap upstream model>');
  process.exit(2);
}
const root = baseURL.replace(/\/v1\/?$/, '');

// The server holds no key and forwards none; the client insists on one.
const client = new OpenAI({ baseURL, apiKey: 'not-a-key', maxRetries: 0, timeout: 60_000 });
const ask = (prompt) => [
  { role: 'system', content: 'You write short reports.' },
  { role: 'user', content: prompt },
];

let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    ++failures;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(what);
}
const show = (s) => JSON.stringify(s);
async function raises(cls, fn) {
  try {
    await fn();
  } catch (e) {
    expect(e instanceof cls, `threw ${e?.constructor?.name}: ${e?.message}`);
    return e;
  }
  throw new Error(`nothing thrown, expected ${cls.name}`);
}

await check('a whole answer: text, the upstream id, created, system_fingerprint, usage, x-cascade-label', async () => {
  const { data: c, response } = await client.chat.completions
    .create({ model: 'cascade-default', messages: ask('Summarise Q3') })
    .withResponse();
  expect(c.object === 'chat.completion', `object ${show(c.object)}`);
  expect(c.choices[0].message.content === expected, `content ${show(c.choices[0].message.content)}`);
  expect(c.choices[0].finish_reason === 'stop', `finish_reason ${show(c.choices[0].finish_reason)}`);
  expect(c.id === 'chatcmpl-upstream', `id ${show(c.id)}`);
  expect(c.created === 1700000000, `created ${show(c.created)}`);
  expect(c.system_fingerprint === 'fp_upstream', `system_fingerprint ${show(c.system_fingerprint)}`);
  expect(c.model === 'cascade-default', `model ${show(c.model)}`);
  expect(c.usage?.prompt_tokens === 11 && c.usage?.completion_tokens === 5 && c.usage?.total_tokens === 16, `usage ${show(c.usage)}`);
  expect(response.headers.get('x-cascade-label') === 'upstream', `x-cascade-label ${show(response.headers.get('x-cascade-label'))}`);
});

await check('a streamed answer assembles the text and ends with finish_reason stop', async () => {
  const stream = await client.chat.completions.create({ model: 'cascade-default', messages: ask('Summarise Q3'), stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    expect(chunk.model === 'cascade-default', `model ${show(chunk.model)}`);
    expect(/^chatcmpl-/.test(chunk.id), `id ${show(chunk.id)}`);
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  expect(text === expected, `assembled ${show(text)}`);
  expect(finish === 'stop', `finish_reason ${show(finish)}`);
});

await check('JSON mode and the sampling fields reach the upstream as sent; unknown fields pass through', async () => {
  const response_format = { type: 'json_object' };
  const c = await client.chat.completions.create({
    model: 'cascade-default', messages: ask('echo the request as JSON'), response_format,
    temperature: 0.25, top_p: 0.5, seed: 7, stop: ['END', 'STOP'], max_completion_tokens: 64, user: 'u-42',
  });
  const forwarded = JSON.parse(c.choices[0].message.content);
  expect(show(forwarded.response_format) === show(response_format), `response_format ${show(forwarded.response_format)}`);
  expect(forwarded.model === defaultModel, `model ${show(forwarded.model)}, expected the chain's ${show(defaultModel)}`);
  expect(forwarded.temperature === 0.25 && forwarded.top_p === 0.5 && forwarded.seed === 7, `sampling ${show(forwarded)}`);
  expect(show(forwarded.stop) === show(['END', 'STOP']), `stop ${show(forwarded.stop)}`);
  expect((forwarded.max_completion_tokens ?? forwarded.max_tokens) === 64, `max tokens ${show(forwarded)}`);
  expect(forwarded.user === 'u-42', `user (an extra field) ${show(forwarded.user)}`);
  expect(forwarded.messages?.[1]?.content === 'echo the request as JSON', `messages ${show(forwarded.messages)}`);
});

await check('JSON mode streamed: response_format and a single stop string reach the upstream', async () => {
  const stream = await client.chat.completions.create({
    model: 'cascade-default', messages: ask('echo the request'), response_format: { type: 'json_object' }, stop: 'END', stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  const forwarded = JSON.parse(text);
  expect(forwarded.response_format?.type === 'json_object', `response_format ${show(forwarded.response_format)}`);
  expect(show(forwarded.stop) === show(['END']) || forwarded.stop === 'END', `stop ${show(forwarded.stop)}`);
  expect(forwarded.stream === true, `stream ${show(forwarded.stream)}`);
});

await check('a model that names no chain is the model the upstream is asked for', async () => {
  const { data: c, response } = await client.chat.completions
    .create({ model: 'my-upstream-model', messages: ask('echo the request') })
    .withResponse();
  const forwarded = JSON.parse(c.choices[0].message.content);
  expect(forwarded.model === 'my-upstream-model', `upstream saw model ${show(forwarded.model)}`);
  expect(c.model === 'my-upstream-model', `response model ${show(c.model)}`);
  expect(response.headers.get('x-cascade-label') === 'upstream', `x-cascade-label ${show(response.headers.get('x-cascade-label'))}`);
});

await check('"cascade-cheap" picks its chain: its upstream model, its label', async () => {
  const { data: c, response } = await client.chat.completions
    .create({ model: 'cascade-cheap', messages: ask('echo the request') })
    .withResponse();
  const forwarded = JSON.parse(c.choices[0].message.content);
  expect(forwarded.model === cheapModel, `upstream saw model ${show(forwarded.model)}, expected ${show(cheapModel)}`);
  expect(c.model === 'cascade-cheap', `response model ${show(c.model)}`);
  expect(response.headers.get('x-cascade-label') === 'cheap', `x-cascade-label ${show(response.headers.get('x-cascade-label'))}`);
});

await check('an upstream that refuses: the template answers, x-cascade-label fallback-template, a generated id', async () => {
  const { data: c, response } = await client.chat.completions
    .create({ model: 'cascade-default', messages: ask('please refuse this') })
    .withResponse();
  expect(response.headers.get('x-cascade-label') === 'fallback-template', `x-cascade-label ${show(response.headers.get('x-cascade-label'))}`);
  expect(/unavailable/.test(c.choices[0].message.content), `content ${show(c.choices[0].message.content)}`);
  expect(/^chatcmpl-[0-9a-f]{24}$/.test(c.id), `id ${show(c.id)}`);
  expect(c.system_fingerprint === null, `system_fingerprint ${show(c.system_fingerprint)}`);
});

await check('models.list() shows both chains', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    expect(m.object === 'model' && m.owned_by === 'cascade' && Number.isInteger(m.created), `model ${show(m)}`);
    ids.push(m.id);
  }
  expect(show(ids) === show(['cascade-default', 'cascade-cheap']), `ids ${show(ids)}`);
});

await check('a message without content: BadRequestError naming the field', async () => {
  const e = await raises(OpenAI.BadRequestError, () =>
    client.chat.completions.create({ model: 'cascade-default', messages: [{ role: 'user' }] }));
  expect(e.status === 400 && e.type === 'invalid_request_error' && e.param === 'messages[0].content', `${e.status} ${e.type} ${e.param}: ${e.message}`);
});

await check('a message without role, a temperature of the wrong type: BadRequestError', async () => {
  const a = await raises(OpenAI.BadRequestError, () =>
    client.chat.completions.create({ model: 'cascade-default', messages: [{ content: 'hi' }] }));
  expect(a.param === 'messages[0].role', `param ${show(a.param)}`);
  const b = await raises(OpenAI.BadRequestError, () =>
    client.chat.completions.create({ model: 'cascade-default', messages: ask('hi'), temperature: 'hot' }));
  expect(b.param === 'temperature', `param ${show(b.param)}`);
});

await check('an unknown path: NotFoundError, code unknown_url', async () => {
  const e = await raises(OpenAI.NotFoundError, () => client.get('/nope'));
  expect(e.status === 404 && e.code === 'unknown_url' && /Unknown request URL: GET \/v1\/nope/.test(e.message), `${e.status} ${e.code}: ${e.message}`);
  const res = await fetch(`${root}/nope`);
  const body = await res.json();
  expect(res.status === 404 && body.error?.type === 'invalid_request_error' && body.error?.code === 'unknown_url', show(body));
});

await check('a wrong method: 405 with Allow', async () => {
  const res = await fetch(`${baseURL}/chat/completions`);
  expect(res.status === 405 && res.headers.get('allow') === 'POST', `${res.status} allow ${res.headers.get('allow')}`);
  expect((await res.json()).error?.type === 'invalid_request_error', 'error body');
});

await check('a body over 1 MiB: 413', async () => {
  const big = JSON.stringify({ model: 'cascade-default', messages: ask('x'.repeat(1100 * 1024)) });
  const res = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
  expect(res.status === 413, `status ${res.status}`);
  expect((await res.json()).error?.type === 'invalid_request_error', 'error body');
});

await check('/healthz is ok and /metrics has cascade_answers_total and the circuit gauges', async () => {
  const h = await fetch(`${root}/healthz`);
  expect(h.status === 200 && (await h.text()) === 'ok', `healthz ${h.status}`);
  const m = await fetch(`${root}/metrics`);
  const text = await m.text();
  expect(m.status === 200 && /^text\/plain/.test(m.headers.get('content-type')), `metrics ${m.status} ${m.headers.get('content-type')}`);
  expect(/^cascade_answers_total\{[^}]*tier="upstream"[^}]*\} [1-9]/m.test(text), `no cascade_answers_total for upstream in:\n${text}`);
  expect(/^cascade_answers_total\{[^}]*tier="cheap"/m.test(text), 'no cascade_answers_total for cheap');
  expect(/^cascade_circuit_open\{tier="cheap"\} 0$/m.test(text), 'no circuit gauge for cheap');
  expect((text.match(/^# TYPE cascade_answers_total /gm) ?? []).length === 1, 'cascade_answers_total declared more than once');
});

console.log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
