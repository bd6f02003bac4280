// Health supervision through the real binary (design §5): circuit breakers, the single half-open
// probe, per-(user, provider) 429 cooldowns, first-byte timeouts, readiness.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, callsTo, mockReset, mockScript, sdk, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

const COOLDOWN_MS = 700;
const FIRST_BYTE_MS = 300;

let stack;
before(async () => {
  stack = await startStack({
    config: {
      providers: {
        openai: { timeouts_ms: { connect: 1000, first_byte: FIRST_BYTE_MS, total: 5000 } },
        anthropic: {}, groq: {}, deepseek: {}, together: {}, sarvam: {},
      },
      tiers: {
        'ib/balanced': [{ provider: 'openai', model: 'gpt-4.1-mini' }, { provider: 'sarvam', model: 'sarvam-105b' }],
        't/slow': [{ provider: 'openai', model: 'mock-stall-first-byte-5000' }, { provider: 'sarvam', model: 'sarvam-30b' }],
        't/headers': [{ provider: 'openai', model: 'mock-stall-headers-5000' }, { provider: 'sarvam', model: 'sarvam-30b' }],
        't/groq': [{ provider: 'groq', model: 'llama-3.1-8b-instant' }, { provider: 'sarvam', model: 'sarvam-30b' }],
        't/deepseek': [{ provider: 'deepseek', model: 'deepseek-chat' }, { provider: 'sarvam', model: 'sarvam-30b' }],
        't/together': [{ provider: 'together', model: 'x' }, { provider: 'sarvam', model: 'sarvam-30b' }],
      },
      breaker: {
        consecutive_failures: 3, window: 20, window_ms: 30000, failure_ratio: 0.5, min_requests: 10,
        cooldown_ms: COOLDOWN_MS, max_cooldown_ms: 5000,
      },
    },
  });
});
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

const chat = (gw, key, model = 'ib/balanced') =>
  sdk(gw, key).chat.completions.create({ model, messages: userMessage() }).withResponse();

async function readyState(provider) {
  return (await api(stack.gw, 'GET', '/readyz')).json.providers[provider];
}

test('after N failures the provider gets no traffic until the cooldown; then exactly one probe; then recovery', async () => {
  const { gw, mock } = stack;
  const u = await userWithKeys(gw, ['groq', 'sarvam']);
  await mockScript(mock, 'groq', Array(3).fill({ status: 503 }));
  // The breaker opens during the third request: the time it was sent is a lower bound of the
  // opening (a time taken after the readiness check would not be, on a loaded machine).
  let openedAt = 0;
  for (let i = 0; i < 3; ++i) {
    openedAt = Date.now();
    const { response } = await chat(gw, u.api_key, 't/groq');
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'groq=503;sarvam=200');
  }
  assert.equal(await readyState('groq'), 'open');
  // While open: skipped without an attempt, the fallback serves.
  for (let i = 0; i < 5; ++i) {
    const { response } = await chat(gw, u.api_key, 't/groq');
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'groq=circuit_open;sarvam=200');
  }
  assert.equal((await callsTo(mock, 'groq')).length, 3, 'requests reached an open provider');
  // After the cooldown: many concurrent requests, exactly one probe reaches the provider.
  await waitUntil(async () => (await readyState('groq')) === 'half_open', { timeoutMs: 5000, what: 'half-open' });
  assert.ok(Date.now() - openedAt >= COOLDOWN_MS - 50);
  await mockScript(mock, 'groq', [{ ok: true, behaviour: 'latency-200' }]);
  const burst = await Promise.all(Array.from({ length: 20 }, () => chat(gw, u.api_key, 't/groq')));
  const tokens = burst.map(({ response }) => response.headers.get('x-inferbridge-attempts'));
  assert.equal(tokens.filter((t) => t === 'groq=200').length, 1, tokens.join(' | '));
  assert.equal(tokens.filter((t) => t === 'groq=circuit_open;sarvam=200').length, 19, tokens.join(' | '));
  assert.equal((await callsTo(mock, 'groq')).length, 4);
  // The probe succeeded: the breaker is closed and traffic is back.
  assert.equal(await readyState('groq'), 'closed');
  for (let i = 0; i < 3; ++i) {
    const { response } = await chat(gw, u.api_key, 't/groq');
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'groq=200');
  }
});

test('a failed probe re-opens the breaker with a doubled cooldown', async () => {
  const { gw, mock } = stack;
  const u = await userWithKeys(gw, ['deepseek', 'sarvam']);
  await mockScript(mock, 'deepseek', Array(4).fill({ status: 500 }));
  for (let i = 0; i < 3; ++i) await chat(gw, u.api_key, 't/deepseek');
  assert.equal(await readyState('deepseek'), 'open');
  await waitUntil(async () => (await readyState('deepseek')) === 'half_open', { timeoutMs: 5000, what: 'half-open' });
  const { response } = await chat(gw, u.api_key, 't/deepseek');
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'deepseek=500;sarvam=200');
  const reopened = Date.now();
  assert.equal(await readyState('deepseek'), 'open');
  await waitUntil(async () => (await readyState('deepseek')) === 'half_open', { timeoutMs: 8000, what: 'second half-open' });
  assert.ok(Date.now() - reopened >= 2 * COOLDOWN_MS - 100, `re-opened for only ${Date.now() - reopened} ms`);
  // Recover so later tests start clean.
  const ok = await chat(gw, u.api_key, 't/deepseek');
  assert.equal(ok.response.headers.get('x-inferbridge-attempts'), 'deepseek=200');
});

test('every provider skipped for an open circuit: 503 with Retry-After', async () => {
  const { gw, mock } = stack;
  const u = await userWithKeys(gw, ['together']);
  await mockScript(mock, 'together', Array(3).fill({ status: 502 }));
  for (let i = 0; i < 3; ++i) {
    await assert.rejects(chat(gw, u.api_key, 't/together'), (e) => e.status === 502);
  }
  await assert.rejects(chat(gw, u.api_key, 't/together'), (err) => {
    assert.equal(err.status, 503);
    assert.equal(err.code, 'circuit_open');
    const ra = Number(err.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 1, `retry-after ${ra}`);
    assert.equal(err.headers.get('x-inferbridge-attempts'), 'together=circuit_open;sarvam=no_key');
    return true;
  });
  await waitUntil(async () => (await readyState('together')) === 'half_open', { timeoutMs: 5000, what: 'half-open' });
  await chat(gw, u.api_key, 't/together');
  assert.equal(await readyState('together'), 'closed');
});

test('a first-byte timeout falls back within the timeout plus a small margin', async () => {
  const { gw } = stack;
  const u = await userWithKeys(gw, ['openai', 'sarvam']);
  for (const tier of ['t/slow', 't/headers']) {
    const t0 = Date.now();
    const { response } = await chat(gw, u.api_key, tier);
    const ms = Date.now() - t0;
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=first_byte_timeout;sarvam=200');
    assert.ok(ms >= FIRST_BYTE_MS && ms < FIRST_BYTE_MS + 400, `${tier}: fallback took ${ms} ms`);
  }
  // Two timeouts are two failures; close it again for the next tests.
  await chat(gw, u.api_key, 'ib/balanced');
});

test('a 429 for user A puts only A in a cooldown for that provider', async () => {
  const { gw, mock } = stack;
  const a = await userWithKeys(gw, ['openai', 'sarvam']);
  const b = await userWithKeys(gw, ['openai', 'sarvam']);
  await mockScript(mock, 'openai', [{ status: 429, retry_after: '30' }]);
  const first = await chat(gw, a.api_key);
  assert.equal(first.response.headers.get('x-inferbridge-attempts'), 'openai=429;sarvam=200');
  const again = await chat(gw, a.api_key);
  assert.equal(again.response.headers.get('x-inferbridge-attempts'), 'openai=cooldown;sarvam=200');
  for (let i = 0; i < 3; ++i) {
    const other = await chat(gw, b.api_key);
    assert.equal(other.response.headers.get('x-inferbridge-attempts'), 'openai=200');
  }
  assert.equal(await readyState('openai'), 'closed', '429 must not count against the breaker');
  // With only that provider and its cooldown running, A gets 429 with the cooldown's Retry-After.
  await assert.rejects(sdk(gw, a.api_key).chat.completions.create({ model: 'openai/gpt-4o', messages: userMessage() }),
    (err) => {
      assert.equal(err.status, 429);
      const ra = Number(err.headers.get('retry-after'));
      assert.ok(ra >= 28 && ra <= 30, `retry-after ${ra}`);
      assert.equal(err.headers.get('x-should-retry'), null);
      return true;
    });
});

test('100 concurrent requests while the primary is failing all succeed through the fallback', async (t) => {
  const { gw, mock } = stack;
  const u = await userWithKeys(gw, ['openai', 'sarvam']);
  await mockScript(mock, 'openai', Array(100).fill({ status: 503 }));
  const results = await Promise.allSettled(Array.from({ length: 100 }, () => chat(gw, u.api_key)));
  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0, failed.map((f) => f.reason?.message).join('\n'));
  for (const r of results) {
    assert.equal(r.value.response.headers.get('x-inferbridge-provider'), 'sarvam');
  }
  const reached = (await callsTo(mock, 'openai')).length;
  t.diagnostic(`${reached} of 100 concurrent requests reached the failing provider before its breaker opened`);
  assert.ok(reached >= 3 && reached <= 100, `${reached} requests reached the failing provider`);
  assert.equal(await readyState('openai'), 'open');
});
