// Issue 18, abuse control: per-user request and token rates (token buckets; 429 with
// `Retry-After` and OpenAI's `x-ratelimit-*` headers on every chat response, recovery after the
// wait), and sign-ups per client address per hour while sign-up is open.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import {
  api, mockProviderEnv, sdk, startGateway, userWithKeys, userMessage,
} from './lib/stack.mjs';
import { startMock, stopProcess, waitUntil } from './lib/procs.mjs';

let mock;
const gateways = [];
before(async () => { mock = await startMock(); });
after(async () => {
  for (const g of gateways) await stopProcess(g);
  if (mock) await stopProcess(mock);
});

async function gateway({ config, env = {} } = {}) {
  const g = await startGateway({ env: { ...mockProviderEnv(mock), ...env }, config });
  gateways.push(g);
  return g;
}

function chat(gw, user, body) {
  return api(gw, 'POST', '/v1/chat/completions', { key: user.api_key, body });
}

const plain = { model: 'openai/gpt-4o-mini', messages: userMessage() };

/// Go's duration text (`6m0s`, `1.5s`, `120ms`) in milliseconds.
function durationMs(text) {
  const m = text.match(/^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$/);
  assert.ok(m && text !== '', `not a Go duration: ${text}`);
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000 + Number(m[4] ?? 0);
}

test('requests per minute: the trio on every chat response, then 429 with Retry-After in the envelope', async () => {
  const gw = await gateway({ config: { rate_limits: { requests_per_minute: 3 } } });
  const u = await userWithKeys(gw, ['openai']);
  const remaining = [];
  for (let i = 0; i < 3; ++i) {
    const r = await chat(gw, u, plain);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '3');
    remaining.push(r.headers.get('x-ratelimit-remaining-requests'));
    // 20 s per request at 3/min: the bucket is full again after (i + 1) * 20 s.
    const reset = durationMs(r.headers.get('x-ratelimit-reset-requests'));
    assert.ok(reset > (i + 1) * 20000 - 2000 && reset <= (i + 1) * 20000, `${reset}`);
    // The tokens limit is off: no tokens trio.
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), null);
  }
  assert.deepEqual(remaining, ['2', '1', '0']);

  const refused = await chat(gw, u, plain);
  assert.equal(refused.status, 429);
  const wait = Number(refused.headers.get('retry-after'));
  assert.ok(wait >= 19 && wait <= 20, `Retry-After ${wait}`);
  assert.equal(refused.json.error.type, 'rate_limit_error');
  assert.equal(refused.json.error.code, 'rate_limit_exceeded');
  assert.match(refused.json.error.message, /requests per minute \(RPM\): Limit 3/);
  assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.equal(refused.headers.get('x-ratelimit-limit-requests'), '3');
  assert.ok(refused.headers.get('x-inferbridge-overhead-ms'));

  // Streams and the SDK see the same: a refusal is an SDK RateLimitError with the headers.
  await assert.rejects(
    sdk(gw, u.api_key).chat.completions.create({ ...plain, stream: true }),
    (err) => err.status === 429
      && (err.headers?.get?.('x-ratelimit-remaining-requests') ?? err.headers?.['x-ratelimit-remaining-requests']) === '0');
  // Another user has a bucket of their own; a stream's head carries the trio too.
  const v = await userWithKeys(gw, ['openai']);
  const { response } = await sdk(gw, v.api_key).chat.completions
    .create({ ...plain, stream: true }).withResponse();
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '2');
});

test('requests per minute recover after Retry-After (60/min: one back per second)', async () => {
  const gw = await gateway({ config: { rate_limits: { requests_per_minute: 60 } } });
  const u = await userWithKeys(gw, ['openai']);
  let ok = 0;
  let refused;
  for (let i = 0; i < 70 && !refused; ++i) {
    const r = await chat(gw, u, plain);
    if (r.status === 200) ++ok; else refused = r;
  }
  assert.ok(refused, 'no 429 after 70 requests');
  assert.ok(ok >= 60 && ok <= 62, `${ok} admitted`);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '1');
  const at = Date.now();
  // A refused request takes nothing, so polling does not delay the recovery.
  await waitUntil(async () => (await chat(gw, u, plain)).status === 200,
    { timeoutMs: 2500, intervalMs: 50, what: 'a request admitted again' });
  const waited = Date.now() - at;
  console.log(`# 60/min: ${ok} admitted, then 429 Retry-After 1; admitted again after ${waited} ms`);
  assert.ok(waited <= 2000, `${waited} ms`);
});

test('tokens per minute: charged after the answer from its usage; the next request waits out the debt', async () => {
  const gw = await gateway({ config: { rate_limits: { tokens_per_minute: 600 } } });
  const u = await userWithKeys(gw, ['openai']);
  // About 600 prompt tokens (the mock counts 4 bytes a token): the answer takes the bucket just
  // below zero.
  const first = await chat(gw, u, { ...plain, messages: userMessage('x'.repeat(2400)) });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '600');
  assert.equal(first.headers.get('x-ratelimit-remaining-tokens'), '600');  // charged after
  assert.equal(first.headers.get('x-ratelimit-limit-requests'), null);
  const used = first.json.usage.total_tokens;
  assert.ok(used > 600, `usage ${used}`);

  const refused = await chat(gw, u, plain);
  assert.equal(refused.status, 429);
  assert.equal(refused.json.error.code, 'rate_limit_exceeded');
  assert.match(refused.json.error.message, /tokens per minute \(TPM\): Limit 600/);
  assert.equal(refused.headers.get('x-ratelimit-remaining-tokens'), '0');
  // 10 tokens a second: one token back after (used - 600 + 1) / 10 s; full after used / 10 s.
  const expected = Math.ceil((used - 600 + 1) / 10);
  const wait = Number(refused.headers.get('retry-after'));
  assert.ok(wait >= expected - 1 && wait <= expected, `Retry-After ${wait}, expected ${expected}`);
  const reset = durationMs(refused.headers.get('x-ratelimit-reset-tokens'));
  assert.ok(reset > used * 100 - 2000 && reset <= used * 100, `reset ${reset} ms for ${used} tokens`);

  const at = Date.now();
  await waitUntil(async () => (await chat(gw, u, plain)).status === 200,
    { timeoutMs: (wait + 2) * 1000, intervalMs: 100, what: 'a request admitted after the debt' });
  const waited = Date.now() - at;
  console.log(`# 600 TPM: first answer used ${used} tokens; Retry-After ${wait}; admitted again after ${waited} ms`);
  assert.ok(waited >= (wait - 1) * 1000, `admitted after ${waited} ms, before Retry-After ${wait}`);
});

/// POST /v1/users from a chosen loopback source address (127.0.0.x all reach 127.0.0.1 on Linux).
function signupFrom(gw, localAddress, email) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ email });
    const req = http.request(`${gw.url}/v1/users`, {
      method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': body.length },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let n = 0;
const email = () => `signup${process.pid}-${++n}@example.com`;

test('sign-ups per address per hour while sign-up is open: 429 with Retry-After, per address', async () => {
  const gw = await gateway({ env: { IB_SIGNUPS_PER_HOUR: '3' } });
  for (let i = 0; i < 3; ++i) {
    assert.equal((await signupFrom(gw, '127.0.0.1', email())).status, 201);
  }
  const refused = await signupFrom(gw, '127.0.0.1', email());
  assert.equal(refused.status, 429);
  assert.equal(refused.json.error.type, 'rate_limit_error');
  assert.equal(refused.json.error.code, 'too_many_signups');
  assert.match(refused.json.error.message, /at most 3 per hour/);
  const wait = Number(refused.headers['retry-after']);
  assert.ok(wait >= 1199 && wait <= 1200, `Retry-After ${wait}`);  // one sign-up back per 20 min
  // Another address has its own allowance.
  assert.equal((await signupFrom(gw, '127.0.0.2', email())).status, 201);
  // An invalid request is not counted (nor answered 429: it is a 400 first).
  assert.equal((await signupFrom(gw, '127.0.0.1', 'not-an-email')).status, 400);
});

test('sign-up throttling is off with IB_SIGNUPS_PER_HOUR=0 and when sign-up needs the admin token', async () => {
  const off = await gateway({ env: { IB_SIGNUPS_PER_HOUR: '0' } });
  for (let i = 0; i < 5; ++i) {
    assert.equal((await signupFrom(off, '127.0.0.1', email())).status, 201);
  }
  const admin = await gateway({
    config: { signup: 'admin' }, env: { IB_SIGNUPS_PER_HOUR: '1', IB_ADMIN_TOKEN: 'adm-0123456789abcdef' },
  });
  for (let i = 0; i < 3; ++i) {
    const r = await api(admin, 'POST', '/v1/users', {
      body: { email: email() }, headers: { authorization: 'Bearer adm-0123456789abcdef' },
    });
    assert.equal(r.status, 201, r.text);
  }
});
