// Issue 18, limits at the API: the number of `messages` (400 during the one-pass parse) and the
// chat requests of one user in flight at once (429 `too_many_concurrent_requests`, counted from
// acceptance to the end of the answer, streams included; a cancelled client frees its slot; the
// count returns to zero after any mix of outcomes).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

const MAX_MESSAGES = 3;
const MAX_INFLIGHT = 2;

let stack;
before(async () => {
  stack = await startStack({
    config: { limits: { max_messages: MAX_MESSAGES, max_inflight_per_user: MAX_INFLIGHT } },
  });
});
after(async () => { await stack?.stop(); });

const messages = (n) => Array.from({ length: n }, (_, i) => ({ role: 'user', content: `m${i}` }));

function chat(user, body, { signal } = {}) {
  return fetch(`${stack.gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.api_key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

/// Starts a stream that sends one content chunk and then stays silent until the client leaves;
/// resolves once that chunk arrived (the request is then surely in flight), with its abort.
async function openStream(user) {
  const controller = new AbortController();
  const res = await chat(user, {
    model: 'openai/mock-stall-mid-1', messages: userMessage('hold'), stream: true,
  }, { signal: controller.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const { value } = await reader.read();
  assert.ok(value && value.length > 0, 'no first chunk');
  return { abort: () => controller.abort(), done: reader.read().catch(() => {}) };
}

function assertConcurrencyRefusal(status, headers, json) {
  assert.equal(status, 429);
  assert.equal(headers.get('retry-after'), '1');
  assert.equal(json.error.type, 'rate_limit_error');
  assert.equal(json.error.code, 'too_many_concurrent_requests');
  assert.match(json.error.message, new RegExp(`at most ${MAX_INFLIGHT} `));
  assert.ok(headers.get('x-inferbridge-overhead-ms'), 'a chat answer without its overhead header');
}

test('more messages than limits.max_messages is a 400 on `messages`; the limit itself is accepted', async () => {
  const u = await userWithKeys(stack.gw, ['openai']);
  const ok = await api(stack.gw, 'POST', '/v1/chat/completions', {
    key: u.api_key, body: { model: 'openai/gpt-4o-mini', messages: messages(MAX_MESSAGES) },
  });
  assert.equal(ok.status, 200, ok.text);
  const over = await api(stack.gw, 'POST', '/v1/chat/completions', {
    key: u.api_key, body: { model: 'openai/gpt-4o-mini', messages: messages(MAX_MESSAGES + 1) },
  });
  assert.equal(over.status, 400);
  assert.deepEqual(over.json, {
    error: {
      message: `messages: too many messages: at most ${MAX_MESSAGES} are accepted`,
      type: 'invalid_request_error', param: 'messages', code: null,
    },
  });
  // A hostile body: 200 000 messages in 3.2 MB (under the 4 MiB body limit).
  const raw = JSON.stringify({ model: 'openai/gpt-4o-mini', messages: Array(200000).fill({ role: 'user' }) });
  const t0 = Date.now();
  const huge = await api(stack.gw, 'POST', '/v1/chat/completions', {
    key: u.api_key, raw, headers: { 'content-type': 'application/json' },
  });
  assert.equal(huge.status, 400);
  assert.equal(huge.json.error.param, 'messages');
  console.log(`# 200000 messages (${(raw.length / 1e6).toFixed(1)} MB) refused in ${Date.now() - t0} ms`);
});

test('a user\'s chat requests beyond limits.max_inflight_per_user get a 429; others are not affected; a cancelled stream frees its slot', async () => {
  const a = await userWithKeys(stack.gw, ['openai']);
  const b = await userWithKeys(stack.gw, ['openai']);
  const s1 = await openStream(a);
  const s2 = await openStream(a);

  const r = await chat(a, { model: 'openai/gpt-4o-mini', messages: userMessage() });
  assertConcurrencyRefusal(r.status, r.headers, await r.json());
  const streamed = await chat(a, { model: 'openai/gpt-4o-mini', messages: userMessage(), stream: true });
  assertConcurrencyRefusal(streamed.status, streamed.headers, await streamed.json());

  const other = await chat(b, { model: 'openai/gpt-4o-mini', messages: userMessage() });
  assert.equal(other.status, 200);
  await other.text();

  // The client leaves: its slot is freed (bounded wait for the gateway to notice the close).
  s1.abort();
  await s1.done;
  await waitUntil(async () => {
    const x = await chat(a, { model: 'openai/gpt-4o-mini', messages: userMessage() });
    await x.text();
    return x.status === 200;
  }, { timeoutMs: 5000, intervalMs: 20, what: 'the aborted stream\'s slot' });
  s2.abort();
  await s2.done;
});

test('exact under concurrency: 20 requests at once with 2 slots admit exactly 2, and after a mix of success, failure and cancel the count is back to 0', async () => {
  const u = await userWithKeys(stack.gw, ['openai']);
  const burst = await Promise.all(Array.from({ length: 20 }, () =>
    chat(u, { model: 'openai/mock-stall-headers-1500', messages: userMessage() })
      .then(async (r) => ({ status: r.status, body: await r.text() }))));
  const statuses = burst.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, MAX_INFLIGHT, `${statuses}`);
  assert.equal(statuses.filter((s) => s === 429).length, 20 - MAX_INFLIGHT, `${statuses}`);
  console.log(`# burst of 20 with ${MAX_INFLIGHT} slots: ${statuses.filter((s) => s === 200).length} admitted, ${statuses.filter((s) => s === 429).length} refused`);

  // A mix: success, upstream failure (direct provider: 502), a refused body upstream (400
  // passed through), a stream, a cancelled non-stream call, a cancelled stream.
  const mix = [
    chat(u, { model: 'openai/gpt-4o-mini', messages: userMessage() }),
    chat(u, { model: 'openai/mock-status-500', messages: userMessage() }),
  ];
  for (const r of await Promise.all(mix)) await r.text();
  const more = [
    chat(u, { model: 'openai/mock-status-400', messages: userMessage() }),
    chat(u, { model: 'openai/gpt-4o-mini', messages: userMessage(), stream: true }),
  ];
  const got = [];
  for (const r of await Promise.all(more)) { got.push(r.status); await r.text(); }
  assert.deepEqual(got, [400, 200]);
  const c1 = new AbortController();
  const pending = chat(u, { model: 'openai/mock-stall-headers-3000', messages: userMessage() }, { signal: c1.signal })
    .catch((e) => e);
  const s = await openStream(u);
  c1.abort();
  s.abort();
  await pending;
  await s.done;

  // Back to 0: both slots can be taken at once again (within a bounded wait for the closes),
  // and a third is refused.
  await waitUntil(async () => {
    const pair = await Promise.all([0, 1].map(() =>
      chat(u, { model: 'openai/mock-stall-headers-300', messages: userMessage() })
        .then(async (r) => { await r.text(); return r.status; })));
    return pair.every((x) => x === 200);
  }, { timeoutMs: 5000, intervalMs: 20, what: 'both slots free again' });
  const p1 = openStream(u);
  const p2 = openStream(u);
  const [h1, h2] = await Promise.all([p1, p2]);
  const third = await chat(u, { model: 'openai/gpt-4o-mini', messages: userMessage() });
  assert.equal(third.status, 429);
  await third.text();
  h1.abort();
  h2.abort();
  await Promise.all([h1.done, h2.done]);
});
