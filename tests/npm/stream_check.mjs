// The official openai client (the version pinned in package.json) against examples/server,
// which sits in front of upstream.mjs. Exits 0 only if every check passes.
//
//   node stream_check.mjs <baseURL, e.g. http://127.0.0.1:8080/v1> <the text the upstream streams>
//
// Checks: a stream assembled from chunk.choices[0]?.delta?.content equals the text, ends with
// finish_reason "stop", and arrives delta by delta (not buffered); include_usage gives a usage chunk; the
// SDK's stream helper assembles the same text; a whole (non-streamed) answer equals it; a stream the
// upstream cuts after two deltas (connection destroyed, or ended without [DONE]) makes the client throw,
// with the helper too; bad input is a 400 the client raises as BadRequestError.

import OpenAI from 'openai';

const [baseURL, expected] = process.argv.slice(2);
if (!baseURL || expected === undefined) {
  console.error('usage: node stream_check.mjs <baseURL> <expected text>');
  process.exit(2);
}

// The server holds no key and forwards none; the client insists on one.
const client = new OpenAI({ baseURL, apiKey: 'not-a-key', maxRetries: 0, timeout: 60_000 });
const model = 'cascade-test';
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

await check('create({stream: true}): the deltas assemble the text, delta by delta, and end with finish_reason stop', async () => {
  const stream = await client.chat.completions.create({ model, messages: ask('Summarise Q3'), stream: true });
  let text = '';
  let finish = null;
  let role = null;
  const arrivals = [];
  for await (const chunk of stream) {
    expect(chunk.object === 'chat.completion.chunk', `object ${show(chunk.object)}`);
    expect(chunk.model === model, `model ${show(chunk.model)}`);
    const d = chunk.choices[0]?.delta?.content;
    if (chunk.choices[0]?.delta?.role) role = chunk.choices[0].delta.role;
    if (d) {
      text += d;
      arrivals.push(Date.now());
    }
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  expect(text === expected, `assembled ${show(text)}, expected ${show(expected)}`);
  expect(role === 'assistant', `role ${show(role)}`);
  expect(finish === 'stop', `finish_reason ${show(finish)}`);
  expect(arrivals.length >= 2, `${arrivals.length} content chunks`);
  // The upstream pauses 700 ms after its first delta: a server that flushes each delta shows that pause
  // between the client's first and last chunk; one that buffers the answer does not.
  const spread = arrivals[arrivals.length - 1] - arrivals[0];
  expect(spread >= 400, `first to last delta took ${spread} ms: the deltas were not flushed as they came`);
});

await check('create({stream: true, stream_options: {include_usage: true}}): a usage chunk with no choices', async () => {
  const stream = await client.chat.completions.create({
    model, messages: ask('Summarise Q3'), stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) {
      expect(chunk.choices.length === 0, 'the usage chunk has choices');
      usage = chunk.usage;
    }
  }
  expect(text === expected, `assembled ${show(text)}`);
  expect(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens && usage.total_tokens > 0,
    `usage ${show(usage)}`);
});

await check('the stream helper: finalChatCompletion() and finalContent() give the text', async () => {
  const helper = client.chat.completions.stream ? client.chat.completions : client.beta.chat.completions;
  const runner = helper.stream({ model, messages: ask('Summarise Q3') });
  let fromEvents = '';
  runner.on('content', (delta) => (fromEvents += delta));
  const final = await runner.finalChatCompletion();
  expect(final.choices[0].message.content === expected, `final ${show(final.choices[0].message.content)}`);
  expect(final.choices[0].finish_reason === 'stop', `finish_reason ${show(final.choices[0].finish_reason)}`);
  expect((await runner.finalContent()) === expected, 'finalContent');
  expect(fromEvents === expected, `content events ${show(fromEvents)}`);
});

await check('create({stream: false}): the whole answer', async () => {
  const c = await client.chat.completions.create({ model, messages: ask('Summarise Q3') });
  expect(c.object === 'chat.completion', `object ${show(c.object)}`);
  expect(c.choices[0].message.content === expected, `content ${show(c.choices[0].message.content)}`);
  expect(c.choices[0].finish_reason === 'stop', `finish_reason ${show(c.choices[0].finish_reason)}`);
});

for (const cut of ['cut', 'nodone']) {
  await check(`an upstream stream ${cut === 'cut' ? 'cut' : 'ended without [DONE]'} after two deltas: the client throws APIError`, async () => {
    const stream = await client.chat.completions.create({ model, messages: ask(`Summarise Q3 (${cut})`), stream: true });
    let text = '';
    let finish = null;
    let thrown = null;
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
    } catch (e) {
      thrown = e;
    }
    expect(thrown, `no exception; the client took ${show(text)} (finish_reason ${show(finish)}) for a whole answer`);
    expect(thrown instanceof OpenAI.APIError, `threw ${thrown?.constructor?.name}: ${thrown?.message}`);
    expect(/stream_incomplete|stopped before/.test(`${thrown.type} ${thrown.message}`), `error ${thrown.type}: ${thrown.message}`);
    expect(text === 'Partial answer', `received ${show(text)} before the error`);
    expect(finish === null, `finish_reason ${show(finish)}`);
  });
}

await check('the stream helper rejects a cut stream too', async () => {
  const helper = client.chat.completions.stream ? client.chat.completions : client.beta.chat.completions;
  const runner = helper.stream({ model, messages: ask('Summarise Q3 (cut)') });
  runner.on('error', () => {});  // the rejection below is what is checked
  let thrown = null;
  try {
    await runner.finalChatCompletion();
  } catch (e) {
    thrown = e;
  }
  expect(thrown instanceof OpenAI.APIError, `threw ${thrown?.constructor?.name ?? 'nothing'}: ${thrown?.message}`);
});

await check('no messages: a 400 the client raises as BadRequestError', async () => {
  let thrown = null;
  try {
    await client.chat.completions.create({ model, messages: [], stream: true });
  } catch (e) {
    thrown = e;
  }
  expect(thrown instanceof OpenAI.BadRequestError, `threw ${thrown?.constructor?.name ?? 'nothing'}`);
  expect(thrown.status === 400 && /messages/.test(thrown.message), `${thrown.status} ${thrown.message}`);
});

await check('a body that is not JSON: a 400 with an OpenAI error object', async () => {
  const res = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [',
  });
  expect(res.status === 400, `status ${res.status}`);
  const body = await res.json();
  expect(typeof body.error?.message === 'string' && body.error.type === 'invalid_request_error', show(body));
});

console.log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
