// The HTTP edge of the gateway (design §3, §9): errors in the OpenAI envelope, limits, keep-alive,
// malformed input, slow clients. Raw sockets where a real client would hide the behaviour.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { api, sdk, signup, startGateway, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { stopProcess, waitUntil } from './lib/procs.mjs';

let stack;
before(async () => {
  stack = await startStack({
    config: {
      limits: { max_body_bytes: 65536, client_read_timeout_ms: 400, client_idle_timeout_ms: 800 },
    },
  });
});
after(async () => { await stack?.stop(); });

function assertEnvelope(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.json?.error?.message, 'string', r.text);
  assert.equal(typeof r.json.error.type, 'string');
  assert.ok('param' in r.json.error && 'code' in r.json.error);
  if (code) assert.equal(r.json.error.code, code);
}

/// Sends raw bytes; resolves with everything the server sent until it closed (or `untilMs`).
function rawExchange(port, chunks, { untilMs = 3000, endAfter = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const started = Date.now();
    const timer = setTimeout(() => { sock.destroy(); resolve({ out, closed: false, ms: Date.now() - started }); }, untilMs);
    sock.on('data', (d) => { out += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve({ out, closed: true, ms: Date.now() - started }); });
    sock.on('connect', async () => {
      for (const c of chunks) sock.write(c);
      if (endAfter) sock.end();
    });
    sock.on('timeout', reject);
  });
}

test('unknown paths are 404 and wrong methods 405 with Allow, in the OpenAI envelope', async () => {
  const { gw } = stack;
  assertEnvelope(await api(gw, 'GET', '/v2/nothing'), 404);
  const r = await api(gw, 'GET', '/v1/chat/completions');
  assertEnvelope(r, 405);
  assert.equal(r.headers.get('allow'), 'POST');
  assertEnvelope(await api(gw, 'PUT', '/v1/keys/openai'), 405);
  assert.equal((await api(gw, 'GET', '/healthz')).json.status, 'ok');
  const ready = await api(gw, 'GET', '/readyz');
  assert.equal(ready.status, 200);
  assert.equal(ready.json.providers.openai, 'closed');
});

test('malformed, too deep, or incomplete chat bodies are 400s naming the problem', async () => {
  const { gw } = stack;
  const u = await userWithKeys(gw, ['openai']);
  const post = (raw) => api(gw, 'POST', '/v1/chat/completions', { key: u.api_key, raw, headers: { 'content-type': 'application/json' } });
  assertEnvelope(await post('{"model": "ib/balanced", "messages": ['), 400);
  assertEnvelope(await post('[1,2,3]'), 400);
  const noModel = await post(JSON.stringify({ messages: userMessage() }));
  assertEnvelope(noModel, 400);
  assert.equal(noModel.json.error.param, 'model');
  const noMessages = await post(JSON.stringify({ model: 'ib/balanced' }));
  assertEnvelope(noMessages, 400);
  assert.equal(noMessages.json.error.param, 'messages');
  const deep = (n) => JSON.stringify({ model: 'ib/balanced', messages: userMessage(), metadata: JSON.parse('['.repeat(n) + ']'.repeat(n)) });
  assert.equal((await post(deep(60))).status, 200);
  assertEnvelope(await post(deep(64)), 400);
  assertEnvelope(await post('['.repeat(50000)), 400);
});

test('bodies over the limit get 413 as soon as the headers show it', async () => {
  const { gw } = stack;
  const u = await userWithKeys(gw, ['openai']);
  // Announced too large: answered before the body is sent, readable while the client still sends.
  const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${u.api_key}\r\n`
    + 'content-type: application/json\r\ncontent-length: 10000000\r\n\r\n';
  const r = await rawExchange(gw.port, [head, 'x'.repeat(200000)]);
  assert.match(r.out, /^HTTP\/1\.1 413 /);
  assert.match(r.out, /"type":"invalid_request_error"/);
  assert.ok(r.closed, 'connection should close after a 413');
  // Chunked without a length: 413 when the limit is crossed.
  const body = JSON.stringify({ model: 'ib/balanced', messages: userMessage('y'.repeat(70000)) });
  const big = await api(gw, 'POST', '/v1/chat/completions', { key: u.api_key, raw: body });
  assertEnvelope(big, 413);
  // Expect: 100-continue with an acceptable size gets the interim response.
  const small = JSON.stringify({ model: 'ib/balanced', messages: userMessage() });
  const cont = await rawExchange(gw.port, [`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${u.api_key}\r\n`
    + `content-length: ${small.length}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n`, small]);
  assert.match(cont.out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
});

test('keep-alive serves several requests on one connection, pipelined too', async () => {
  const { gw } = stack;
  const one = 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n';
  const r = await rawExchange(gw.port, [one + one, one + 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n']);
  assert.equal(r.out.match(/HTTP\/1\.1 200 OK/g).length, 4);
  assert.ok(r.closed);
});

test('slow and stalled clients are timed out', async () => {
  const { gw } = stack;
  // Half a request, then silence: the read timeout closes the connection.
  const stalled = await rawExchange(gw.port, ['POST /v1/users HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"email":'], { untilMs: 5000 });
  assert.ok(stalled.closed, 'stalled client not disconnected');
  assert.ok(stalled.ms < 3000, `took ${stalled.ms} ms`);
  // An idle keep-alive connection is closed too.
  const idle = await rawExchange(gw.port, [], { untilMs: 5000 });
  assert.ok(idle.closed && idle.ms < 4000, `idle connection kept ${idle.ms} ms`);
  // Garbage is a 400 (or a close), never a crash.
  const junk = await rawExchange(gw.port, ['\x00\x01\x02 NOT HTTP\r\n\r\n']);
  assert.ok(junk.closed);
  assert.equal((await api(gw, 'GET', '/healthz')).status, 200);
});

test('sign-up and key registration validate their input', async () => {
  const { gw } = stack;
  assertEnvelope(await api(gw, 'POST', '/v1/users', { body: { email: 'not-an-email' } }), 400, 'invalid_email');
  assertEnvelope(await api(gw, 'POST', '/v1/users', { raw: '{"email":' }), 400);
  const u = await signup(gw, 'dup@example.com');
  const dup = await api(gw, 'POST', '/v1/users', { body: { email: 'DUP@example.com' } });
  assertEnvelope(dup, 409, 'email_taken');
  const unknown = await api(gw, 'POST', '/v1/keys', { key: u.api_key, body: { provider: 'mistral', api_key: 'x' } });
  assertEnvelope(unknown, 400, 'unknown_provider');
  assert.match(unknown.json.error.message, /openai, anthropic, groq, deepseek, together, sarvam/);
  assertEnvelope(await api(gw, 'POST', '/v1/keys', { key: u.api_key, body: { provider: 'openai', api_key: '' } }), 400);
  assertEnvelope(await api(gw, 'POST', '/v1/keys', { body: { provider: 'openai', api_key: 'sk-x' } }), 401);
  assertEnvelope(await api(gw, 'GET', '/v1/keys', { key: 'ib_nope' }), 401);
  assertEnvelope(await api(gw, 'GET', '/v1/models'), 401);
});

test('x-inferbridge-timeout-ms bounds the whole request', async () => {
  const { gw } = stack;
  const u = await userWithKeys(gw, ['openai']);
  const t0 = Date.now();
  const r = await api(gw, 'POST', '/v1/chat/completions', {
    key: u.api_key,
    headers: { 'x-inferbridge-timeout-ms': '300' },
    body: { model: 'openai/mock-stall-headers-5000', messages: userMessage() },
  });
  assertEnvelope(r, 504, 'deadline');
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  assert.equal(r.headers.get('x-inferbridge-attempts'), 'openai=deadline');
  assertEnvelope(await api(gw, 'POST', '/v1/chat/completions', {
    key: u.api_key, headers: { 'x-inferbridge-timeout-ms': 'soon' },
    body: { model: 'ib/balanced', messages: userMessage() },
  }), 400);
});

test('admin sign-up mode requires IB_ADMIN_TOKEN', async () => {
  const gw = await startGateway({ config: { signup: 'admin' }, env: { IB_ADMIN_TOKEN: 'let-me-in-please' } });
  try {
    assertEnvelope(await api(gw, 'POST', '/v1/users', { body: { email: 'a@example.com' } }), 401);
    assertEnvelope(await api(gw, 'POST', '/v1/users', { key: 'wrong', body: { email: 'a@example.com' } }), 401);
    const ok = await api(gw, 'POST', '/v1/users', { key: 'let-me-in-please', body: { email: 'a@example.com' } });
    assert.equal(ok.status, 201);
  } finally {
    await stopProcess(gw);
  }
  await assert.rejects(startGateway({ config: { signup: 'admin' } }), /IB_ADMIN_TOKEN/);
});

test('metrics are served in the Prometheus text format', async () => {
  const { gw } = stack;
  const u = await userWithKeys(gw, ['openai']);
  await sdk(gw, u.api_key).chat.completions.create({ model: 'ib/balanced', messages: userMessage() });
  await waitUntil(async () => (await api(gw, 'GET', '/metrics')).text.includes('inferbridge_requests_total{'),
    { what: 'requests_total in /metrics' });
  const m = (await api(gw, 'GET', '/metrics')).text;
  assert.match(m, /inferbridge_requests_total\{.*code="200".*\} \d+/);
  assert.match(m, /inferbridge_upstream_attempts_total\{.*provider="openai".*\}/);
  assert.match(m, /inferbridge_circuit_state\{provider="openai"\} 0/);
  assert.ok(!m.includes(u.id) && !m.includes(u.email), 'user-identifying labels');
});
