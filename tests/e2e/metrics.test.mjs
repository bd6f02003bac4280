// /metrics after a known mix of requests (issue 16): exact counter values, the gateway-overhead
// histogram and header, build_info and the process_* series.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { addKey, api, mockReset, mockScript, sdk, signup, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

let stack;
before(async () => {
  stack = await startStack({
    config: {
      // Keep breakers out of the way: the mix fails providers on purpose.
      breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 },
    },
  });
});
after(async () => { await stack?.stop(); });

/// The samples of an exposition: `name{a="x",b="y"}` (labels as prometheus-cpp writes them) ->
/// value.
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/// The series key of `name` with `labels` (an object), labels sorted by name (a histogram's `le`
/// last).
function series(name, labels = {}) {
  const keys = Object.keys(labels).filter((k) => k !== 'le').sort();
  if ('le' in labels) keys.push('le');
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}`;
}

async function scrape() {
  const r = await api(stack.gw, 'GET', '/metrics');
  assert.equal(r.status, 200);
  return r.text;
}

/// The overhead header: milliseconds with three decimals, at least 0, at most the whole request.
function checkOverhead(headers, elapsedMs, what) {
  const v = headers.get('x-inferbridge-overhead-ms');
  assert.ok(v !== null, `${what}: no x-inferbridge-overhead-ms`);
  assert.match(v, /^\d+\.\d{3}$/, `${what}: ${v}`);
  const ms = Number(v);
  assert.ok(ms >= 0 && ms <= elapsedMs, `${what}: overhead ${ms} ms of ${elapsedMs} ms`);
  return ms;
}

test('after a known mix, /metrics shows the exact counts; every chat response carries its overhead', async () => {
  const tier = 'ib/balanced';
  const u = await userWithKeys(stack.gw, ['openai', 'sarvam', 'anthropic']);
  const client = sdk(stack.gw, u.api_key);
  const chat = (body = {}) => client.chat.completions
    .create({ model: tier, messages: userMessage(), ...body }).withResponse();
  const tokens = { openai: { prompt: 0, completion: 0 }, sarvam: { prompt: 0, completion: 0 } };
  const addTokens = (p, usage) => {
    tokens[p].prompt += usage.prompt_tokens;
    tokens[p].completion += usage.completion_tokens;
  };
  await mockReset(stack.mock);

  // 1. A success from the first provider.
  let t0 = performance.now();
  const ok = await chat();
  checkOverhead(ok.response.headers, performance.now() - t0, 'success');
  assert.equal(ok.response.headers.get('x-inferbridge-provider'), 'openai');
  addTokens('openai', ok.data.usage);

  // 2. A stream from the first provider (the overhead is in the head, up to the first byte).
  t0 = performance.now();
  const st = await chat({ stream: true, stream_options: { include_usage: true } });
  checkOverhead(st.response.headers, performance.now() - t0, 'stream');
  assert.equal(st.response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  for await (const chunk of st.data) {
    if (chunk.usage) addTokens('openai', chunk.usage);
  }

  // 3. A 400 from the provider: passed through, no fallback.
  await mockScript(stack.mock, 'openai', [{ status: 400 }]);
  t0 = performance.now();
  await assert.rejects(chat(), (err) => {
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 400);
    checkOverhead(err.headers, performance.now() - t0, '400');
    return true;
  });

  // 4. A fallback: openai 503, sarvam serves.
  await mockScript(stack.mock, 'openai', [{ status: 503 }]);
  t0 = performance.now();
  const fb = await chat();
  checkOverhead(fb.response.headers, performance.now() - t0, 'fallback');
  assert.equal(fb.response.headers.get('x-inferbridge-attempts'), 'openai=503;sarvam=200');
  addTokens('sarvam', fb.data.usage);

  // 5. Every provider fails: 502.
  for (const p of ['openai', 'sarvam', 'anthropic']) await mockScript(stack.mock, p, [{ status: 503 }]);
  t0 = performance.now();
  await assert.rejects(chat(), (err) => {
    assert.equal(err.status, 502);
    checkOverhead(err.headers, performance.now() - t0, '502');
    return true;
  });

  // 6. Refused by the gateway itself (unknown model, bad JSON): not counted (no route, no label),
  // but the answer carries the overhead too.
  for (const body of [JSON.stringify({ model: 'no-such-model', messages: userMessage() }), '{"model":']) {
    t0 = performance.now();
    const r = await api(stack.gw, 'POST', '/v1/chat/completions', { key: u.api_key, raw: body, headers: { 'content-type': 'application/json' } });
    assert.ok(r.status === 404 || r.status === 400, `${r.status}`);
    checkOverhead(r.headers, performance.now() - t0, `${r.status}`);
  }

  const R = 'inferbridge_requests_total';
  const expected = new Map([
    [series(R, { tier, provider: 'openai', code: '200' }), 2],
    [series(R, { tier, provider: 'openai', code: '400' }), 1],
    [series(R, { tier, provider: 'sarvam', code: '200' }), 1],
    [series(R, { tier, provider: 'none', code: '502' }), 1],
    [series('inferbridge_fallbacks_total', { tier, from_provider: 'openai', reason: '503' }), 2],
    [series('inferbridge_fallbacks_total', { tier, from_provider: 'sarvam', reason: '503' }), 1],
    [series('inferbridge_upstream_attempts_total', { provider: 'openai', outcome: 'success' }), 2],
    [series('inferbridge_upstream_attempts_total', { provider: 'openai', outcome: 'request_rejected' }), 1],
    [series('inferbridge_upstream_attempts_total', { provider: 'openai', outcome: 'server_error' }), 2],
    [series('inferbridge_upstream_attempts_total', { provider: 'sarvam', outcome: 'success' }), 1],
    [series('inferbridge_upstream_attempts_total', { provider: 'sarvam', outcome: 'server_error' }), 1],
    [series('inferbridge_upstream_attempts_total', { provider: 'anthropic', outcome: 'server_error' }), 1],
    [series('inferbridge_tokens_total', { provider: 'openai', kind: 'prompt' }), tokens.openai.prompt],
    [series('inferbridge_tokens_total', { provider: 'openai', kind: 'completion' }), tokens.openai.completion],
    [series('inferbridge_tokens_total', { provider: 'sarvam', kind: 'prompt' }), tokens.sarvam.prompt],
    [series('inferbridge_tokens_total', { provider: 'sarvam', kind: 'completion' }), tokens.sarvam.completion],
    [series('inferbridge_overhead_seconds_count', { tier }), 5],
    [series('inferbridge_request_duration_seconds_count', { tier }), 5],
    [series('inferbridge_upstream_duration_seconds_count', { provider: 'openai' }), 5],
    [series('inferbridge_request_records_dropped_total'), 0],
    [series('inferbridge_inflight_requests'), 0],
  ]);
  assert.ok(tokens.openai.prompt > 0 && tokens.sarvam.completion > 0, JSON.stringify(tokens));
  // Requests are counted from their records, off the request path: a bounded wait for the last.
  await waitUntil(async () => samples(await scrape()).get(series(R, { tier, provider: 'none', code: '502' })) === 1,
    { what: 'the 502 in requests_total' });
  const got = samples(await scrape());
  const mismatches = [];
  for (const [k, v] of expected) {
    if (got.get(k) !== v) mismatches.push(`${k}: expected ${v}, got ${got.get(k)}`);
  }
  assert.deepEqual(mismatches, []);
  // Nothing else was counted for this tier.
  const other = [...got.keys()].filter((k) => k.startsWith(`${R}{`) && !expected.has(k));
  assert.deepEqual(other, []);
  // The overhead histogram's buckets run from 25 µs to 100 ms; every observation is in +Inf.
  assert.equal(got.get(series('inferbridge_overhead_seconds_bucket', { tier, le: '2.5e-05' })) !== undefined, true);
  assert.equal(got.get(series('inferbridge_overhead_seconds_bucket', { tier, le: '0.1' })) !== undefined, true);
  assert.equal(got.get(series('inferbridge_overhead_seconds_bucket', { tier, le: '+Inf' })), 5);
  assert.equal(got.get(series('inferbridge_request_duration_seconds_bucket', { tier, le: '300' })), 5);
  // Store writes: every (op, outcome) series is there.
  for (const op of ['create_user', 'put_key', 'delete_key', 'append_requests']) {
    for (const outcome of ['ok', 'error']) {
      assert.ok(got.has(series('inferbridge_store_writes_total', { op, outcome })), `${op} ${outcome}`);
    }
  }
});

test('a chat request refused for its key still says the time the gateway took', async () => {
  for (const key of [undefined, 'ib_not-a-key']) {
    const r = await api(stack.gw, 'POST', '/v1/chat/completions', {
      key, body: { model: 'ib/balanced', messages: userMessage() },
    });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('x-inferbridge-overhead-ms') ?? '', /^\d+\.\d{3}$/);
  }
  // Other endpoints' 401s carry no chat header.
  const keys = await api(stack.gw, 'GET', '/v1/keys');
  assert.equal(keys.status, 401);
  assert.equal(keys.headers.get('x-inferbridge-overhead-ms'), null);
});

test('every durable write is counted by op and outcome', async () => {
  const before = samples(await scrape());
  const count = (m, op, outcome) => m.get(series('inferbridge_store_writes_total', { op, outcome })) ?? 0;
  const u = await signup(stack.gw, `writes-${Date.now()}@example.com`);
  await addKey(stack.gw, u.api_key, 'openai', 'sk-writes-1');
  await addKey(stack.gw, u.api_key, 'openai', 'sk-writes-2'); // a replacement is one more write
  const del = await api(stack.gw, 'DELETE', '/v1/keys/openai', { key: u.api_key });
  assert.equal(del.status, 204);
  const after = samples(await scrape());
  assert.equal(count(after, 'create_user', 'ok') - count(before, 'create_user', 'ok'), 1);
  assert.equal(count(after, 'put_key', 'ok') - count(before, 'put_key', 'ok'), 2);
  assert.equal(count(after, 'delete_key', 'ok') - count(before, 'delete_key', 'ok'), 1);
  for (const op of ['create_user', 'put_key', 'delete_key']) {
    assert.equal(count(after, op, 'error'), count(before, op, 'error'), op);
  }
});

test('build_info and the process_* series are exposed with their types', async () => {
  const text = await scrape();
  assert.match(text, /^# TYPE inferbridge_build_info gauge$/m);
  assert.match(text, /^inferbridge_build_info\{version="[^"]+"\} 1$/m);
  const got = samples(text);
  for (const [name, type] of [
    ['process_cpu_seconds_total', 'counter'], ['process_resident_memory_bytes', 'gauge'],
    ['process_virtual_memory_bytes', 'gauge'], ['process_open_fds', 'gauge'],
    ['process_max_fds', 'gauge'], ['process_start_time_seconds', 'gauge'],
  ]) {
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
    assert.ok(Number.isFinite(got.get(name)), `${name} = ${got.get(name)}`);
  }
  assert.ok(got.get('process_resident_memory_bytes') > 1e6);
  assert.ok(got.get('process_open_fds') >= 3 && got.get('process_open_fds') <= got.get('process_max_fds'));
  const now = Date.now() / 1000;
  const start = got.get('process_start_time_seconds');
  assert.ok(start <= now + 1 && start > now - 3600, `start ${start}, now ${now}`);
  // Read at scrape time: CPU time never goes down.
  const cpu = got.get('process_cpu_seconds_total');
  assert.ok(samples(await scrape()).get('process_cpu_seconds_total') >= cpu);
});
