// End-to-end tests of bench/mock_provider: every personality's happy path, the fault classes the
// gateway's tests depend on, scripts, and the introspection endpoints.
// Run: IB_BUILD_DIR=<build dir> node --test mock_provider.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, stopProcess, waitUntil } from './lib/procs.mjs';

let mock;
let base;

before(async () => {
  mock = await startMock();
  base = mock.url;
});

after(async () => {
  const code = await stopProcess(mock);
  assert.equal(code, 0, `mock_provider exited with ${code}\n${mock.stderr()}`);
});

// -- helpers ----------------------------------------------------------------------------------

const providers = {
  openai: { path: '/openai/v1/chat/completions', auth: { authorization: 'Bearer sk-test' } },
  anthropic: {
    path: '/anthropic/v1/messages',
    auth: { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
  },
  groq: { path: '/groq/openai/v1/chat/completions', auth: { authorization: 'Bearer gsk_test' } },
  deepseek: { path: '/deepseek/chat/completions', auth: { authorization: 'Bearer sk-ds' } },
  together: { path: '/together/v1/chat/completions', auth: { authorization: 'Bearer tg-test' } },
  sarvam: { path: '/sarvam/v1/chat/completions', auth: { 'api-subscription-key': 'sk_sarvam' } },
};
const openaiFamily = ['openai', 'groq', 'deepseek', 'together', 'sarvam'];

function chatBody(provider, { model = 'mock-ok', text = 'hi there', stream = false, usage = false, extra = {} } = {}) {
  const body = { model, messages: [{ role: 'user', content: text }], stream, ...extra };
  if (provider === 'anthropic') body.max_tokens = 64;
  else if (stream && usage) body.stream_options = { include_usage: true };
  return body;
}

async function chat(provider, opts = {}, { headers, signal } = {}) {
  const p = providers[provider];
  return fetch(base + p.path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(headers ?? p.auth) },
    body: typeof opts === 'string' ? opts : JSON.stringify(chatBody(provider, opts)),
    signal,
  });
}

async function getJson(path) {
  const res = await fetch(base + path);
  assert.equal(res.status, 200);
  return res.json();
}

async function postJson(path, body) {
  return fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const stats = () => getJson('/__mock/stats');
const reset = async () => assert.equal((await postJson('/__mock/reset', {})).status, 200);

/// Splits SSE text into events: {event, data} with multi-line data joined by '\n'.
function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    if (block.trim() === '') continue;
    const ev = { event: null, data: [], comments: 0 };
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line.startsWith(':')) ev.comments++;
      else if (line.startsWith('event:')) ev.event = line.slice(6).replace(/^ /, '');
      else if (line.startsWith('data:')) ev.data.push(line.slice(5).replace(/^ /, ''));
    }
    events.push({ event: ev.event, data: ev.data.join('\n'), comments: ev.comments });
  }
  return events;
}

const jsonEvents = (text) => parseSse(text).filter((e) => e.data !== '[DONE]' && e.data !== '').map((e) => ({ ...e, json: JSON.parse(e.data) }));

/// Sends raw bytes; resolves once the server ends the connection (or `until(text)` holds) with
/// the bytes received, every 'data' buffer, how it ended and any socket error.
function raw(bytes, { until, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(mock.port, mock.host);
    const chunks = [];
    let settled = false;
    const finish = (how, error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      resolve({ how, error, chunks, buf, text: buf.toString('utf8') });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => {
      chunks.push(d);
      if (until && until(Buffer.concat(chunks).toString('utf8'))) finish('seen');
    });
    sock.on('end', () => finish('fin'));
    sock.on('error', (e) => finish('error', e));
    sock.on('close', () => finish('close'));
    sock.on('timeout', () => reject(new Error('socket timeout')));
  });
}

function rawChat(provider, opts = {}, extraHeaders = '') {
  const p = providers[provider];
  const body = JSON.stringify(chatBody(provider, opts));
  const headers = Object.entries(p.auth).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `POST ${p.path} HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\n${headers}`
    + `${extraHeaders}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/// Splits a raw HTTP/1.1 response into head and body bytes.
function splitResponse(buf) {
  const end = buf.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'no complete response head');
  const head = buf.subarray(0, end).toString('latin1');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: buf.subarray(end + 4) };
}

/// Decodes a chunked body: the chunk payloads and whether the terminating 0-chunk arrived.
function dechunk(body) {
  const payloads = [];
  let pos = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', pos);
    if (eol < 0) return { payloads, complete: false };
    const size = parseInt(body.subarray(pos, eol).toString('latin1'), 16);
    if (size === 0) return { payloads, complete: true };
    if (eol + 2 + size > body.length) return { payloads, complete: false, partial: true };
    payloads.push(body.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
}

async function readAll(res) {
  return Buffer.from(await res.arrayBuffer()).toString('utf8');
}

// -- process ----------------------------------------------------------------------------------

test('prints the listening line and exits 0 promptly on SIGINT', async () => {
  const other = await startMock(['--threads', '2']);
  assert.match(other.stdout().split('\n')[0], /^listening on 127\.0\.0\.1:\d+$/);
  const res = await fetch(`${other.url}/__mock/stats`);
  assert.equal(res.status, 200);
  const t0 = Date.now();
  assert.equal(await stopProcess(other, { signal: 'SIGINT' }), 0);
  assert.ok(Date.now() - t0 < 3000);
});

// -- happy paths ------------------------------------------------------------------------------

for (const provider of openaiFamily) {
  test(`${provider}: non-stream happy path`, async () => {
    const res = await chat(provider, { model: 'some-model', text: 'hi there' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const body = await res.json();
    assert.match(body.id, /^mock-\d+$/);
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.created, 1732000000);
    assert.equal(body.model, 'some-model-2025-01-01');
    assert.equal(body.system_fingerprint, 'fp_mock');
    const choice = body.choices[0];
    assert.equal(choice.message.role, 'assistant');
    assert.ok(choice.message.content.startsWith(`Hello from mock ${provider}! You said: hi there`));
    assert.equal(choice.finish_reason, provider === 'together' ? 'eos' : 'stop');
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    if (provider === 'openai') assert.match(res.headers.get('x-request-id'), /^req_/);
    if (provider === 'groq') {
      assert.match(body.x_groq.id, /^req_/);
      assert.equal(typeof body.usage.total_time, 'number');
      assert.ok(res.headers.get('x-ratelimit-reset-tokens'));
    }
    if (provider === 'deepseek') {
      assert.equal(typeof body.usage.prompt_cache_hit_tokens, 'number');
      assert.equal(body.usage.prompt_cache_hit_tokens + body.usage.prompt_cache_miss_tokens, body.usage.prompt_tokens);
    }
    if (provider === 'together') assert.ok(res.headers.get('cf-ray'));
    if (provider === 'sarvam') assert.match(choice.message.content, /[\u0900-\u097F]/);
  });

  test(`${provider}: stream happy path with include_usage`, async () => {
    const res = await chat(provider, { model: 'mock-ok', stream: true, usage: true, text: 'stream me' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const text = await readAll(res);
    const all = parseSse(text);
    assert.equal(all.at(-1).data, '[DONE]');
    const chunks = jsonEvents(text);
    const ids = new Set(chunks.map((c) => c.json.id));
    assert.equal(ids.size, 1);
    for (const c of chunks) {
      assert.equal(c.json.object, 'chat.completion.chunk');
      assert.equal(c.json.created, 1732000000);
      assert.equal(c.json.model, 'mock-ok');
      assert.ok('usage' in c.json, 'every chunk has usage with include_usage');
    }
    assert.deepEqual(chunks[0].json.choices[0].delta, { role: 'assistant', content: '' });
    const content = chunks.filter((c) => c.json.choices[0]?.delta?.content);
    assert.ok(content.length >= 3);
    const joined = content.map((c) => c.json.choices[0].delta.content).join('');
    assert.ok(joined.startsWith(`Hello from mock ${provider}! You said: stream me`));
    const finish = chunks.filter((c) => c.json.choices[0]?.finish_reason);
    assert.equal(finish.length, 1);
    assert.equal(finish[0].json.choices[0].finish_reason, provider === 'together' ? 'eos' : 'stop');
    const last = chunks.at(-1).json;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
    if (provider === 'groq') {
      assert.match(chunks[0].json.x_groq.id, /^req_/);
      assert.equal(typeof last.x_groq.usage.queue_time, 'number');
    }
  });
}

test('stream without include_usage sends no usage (Together and Groq extras excepted)', async () => {
  for (const provider of openaiFamily) {
    const chunks = jsonEvents(await readAll(await chat(provider, { stream: true })));
    const withUsage = chunks.filter((c) => 'usage' in c.json);
    if (provider === 'together') {
      // Usage on the last content chunk, unasked.
      assert.equal(withUsage.length, 1);
      assert.ok(withUsage[0].json.choices[0].delta.content);
    } else {
      assert.equal(withUsage.length, 0, provider);
    }
    if (provider === 'groq') assert.ok(chunks.at(-1).json.x_groq.usage, 'x_groq.usage on the last chunk');
  }
});

test('deepseek reasoner streams reasoning_content before content', async () => {
  const chunks = jsonEvents(await readAll(await chat('deepseek', { model: 'deepseek-reasoner', stream: true })));
  const kinds = chunks.map((c) => c.json.choices[0]?.delta).filter(Boolean)
    .map((d) => (d.reasoning_content ? 'r' : d.content ? 'c' : '-')).join('');
  assert.match(kinds, /^-r+c{3,}-$/);
  const res = await chat('deepseek', { model: 'deepseek-reasoner' });
  const body = await res.json();
  assert.ok(body.choices[0].message.reasoning_content.length > 0);
  assert.ok(body.usage.completion_tokens_details.reasoning_tokens > 0);
});

test('anthropic: non-stream message', async () => {
  const res = await chat('anthropic', { model: 'claude-x', text: 'yo' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('request-id'), /^req_/);
  assert.ok(res.headers.get('anthropic-ratelimit-requests-remaining'));
  const body = await res.json();
  assert.match(body.id, /^msg_/);
  assert.equal(body.type, 'message');
  assert.equal(body.model, 'claude-x-2025-01-01');
  assert.equal(body.content[0].type, 'text');
  assert.equal(body.content[0].text, 'Hello from mock anthropic! You said: yo');
  assert.equal(body.stop_reason, 'end_turn');
  assert.equal(typeof body.usage.input_tokens, 'number');
});

test('anthropic: exact stream event sequence', async () => {
  const text = await readAll(await chat('anthropic', { stream: true }));
  const events = parseSse(text);
  for (const e of events) assert.equal(JSON.parse(e.data).type, e.event, 'event: equals data.type');
  const names = events.map((e) => e.event).join(',');
  assert.match(names, /^message_start,content_block_start,ping,(content_block_delta,){3,}content_block_stop,message_delta,message_stop$/);
  const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta);
  assert.ok(deltas.every((d) => d.type === 'text_delta'));
  assert.equal(deltas.map((d) => d.text).join(''), 'Hello from mock anthropic! You said: hi there');
  const md = JSON.parse(events.at(-2).data);
  assert.equal(md.delta.stop_reason, 'end_turn');
  assert.ok(md.usage.output_tokens > 1);
});

test('anthropic: request validation answers 400 invalid_request_error', async () => {
  const cases = [
    { model: 'claude', messages: [{ role: 'user', content: 'x' }] }, // no max_tokens
    { model: 'claude', max_tokens: 5, messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'y' }] },
    { model: 'claude', max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] },
    { model: 'claude', max_tokens: 5, messages: [] },
  ];
  for (const c of cases) {
    const res = await chat('anthropic', JSON.stringify(c));
    assert.equal(res.status, 400, JSON.stringify(c));
    const body = await res.json();
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.request_id, /^req_/);
  }
});

test('tool calls: OpenAI-style stream and non-stream', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } },
    { type: 'function', function: { name: 'other' } }];
  const extra = { tools };
  const chunks = jsonEvents(await readAll(await chat('openai', { stream: true, text: 'please CALL_TOOL', extra })));
  const calls = chunks.flatMap((c) => c.json.choices[0]?.delta?.tool_calls ?? []);
  assert.ok(calls.length >= 3);
  assert.equal(calls[0].id, 'call_mock_1');
  assert.equal(calls[0].type, 'function');
  assert.equal(calls[0].function.name, 'get_weather');
  const pieces = calls.map((c) => c.function.arguments);
  assert.ok(pieces.includes(''));
  assert.deepEqual(JSON.parse(pieces.join('')), { city: 'Pune', unit: 'c' });
  assert.equal(chunks.find((c) => c.json.choices[0]?.finish_reason).json.choices[0].finish_reason, 'tool_calls');

  const body = await (await chat('groq', { text: 'CALL_TOOL now', extra })).json();
  const msg = body.choices[0].message;
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls[0].id, 'call_mock_1');
  assert.equal(msg.tool_calls[0].function.arguments, '{"city":"Pune","unit":"c"}');
  assert.equal(body.choices[0].finish_reason, 'tool_calls');

  // Without CALL_TOOL the reply is text even with tools present.
  const plain = await (await chat('openai', { text: 'no tools please', extra })).json();
  assert.ok(plain.choices[0].message.content.startsWith('Hello'));
});

test('tool calls: Anthropic tool_use stream with input_json_delta pieces', async () => {
  const extra = { tools: [{ name: 'get_weather', input_schema: { type: 'object' } }] };
  const events = parseSse(await readAll(await chat('anthropic', { stream: true, text: 'CALL_TOOL', extra })));
  const start = JSON.parse(events[1].data);
  assert.deepEqual(start.content_block, { type: 'tool_use', id: 'toolu_mock_1', name: 'get_weather', input: {} });
  const pieces = events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta);
  assert.ok(pieces.length >= 3);
  assert.ok(pieces.every((d) => d.type === 'input_json_delta'));
  assert.ok(pieces.some((d) => d.partial_json === ''));
  assert.deepEqual(JSON.parse(pieces.map((d) => d.partial_json).join('')), { city: 'Pune', unit: 'c' });
  assert.equal(JSON.parse(events.at(-2).data).delta.stop_reason, 'tool_use');
  const body = await (await chat('anthropic', { text: 'CALL_TOOL', extra })).json();
  assert.deepEqual(body.content, [{ type: 'tool_use', id: 'toolu_mock_1', name: 'get_weather', input: { city: 'Pune', unit: 'c' } }]);
  assert.equal(body.stop_reason, 'tool_use');
});

test('models endpoints in each provider\'s own list shape', async () => {
  for (const path of ['/openai/v1/models', '/groq/openai/v1/models', '/deepseek/models', '/deepseek/v1/models', '/sarvam/v1/models']) {
    const prov = Object.keys(providers).find((p) => path.startsWith(`/${p}`));
    const res = await fetch(base + path, { headers: providers[prov].auth });
    const body = await res.json();
    assert.equal(body.object, 'list', path);
    assert.ok(body.data.length > 0);
  }
  const together = await (await fetch(`${base}/together/v1/models`, { headers: providers.together.auth })).json();
  assert.ok(Array.isArray(together));
  assert.ok(together[0].context_length > 0);
  const ant = await (await fetch(`${base}/anthropic/v1/models`, { headers: providers.anthropic.auth })).json();
  assert.equal(ant.has_more, false);
  assert.equal(ant.first_id, ant.data[0].id);
  assert.equal(ant.last_id, ant.data.at(-1).id);
  assert.equal((await fetch(`${base}/openai/v1/models`)).status, 401);
});

// -- auth -------------------------------------------------------------------------------------

test('auth: each provider rejects a missing or invalid key in its own shape', async () => {
  for (const provider of Object.keys(providers)) {
    for (const headers of [{}, provider === 'anthropic'
      ? { 'x-api-key': 'sk-invalid', 'anthropic-version': '2023-06-01' }
      : provider === 'sarvam' ? { 'api-subscription-key': 'invalid-key' } : { authorization: 'Bearer sk-invalid-1' }]) {
      const res = await chat(provider, {}, { headers });
      const body = await res.json();
      if (provider === 'sarvam') {
        assert.equal(res.status, 403);
        assert.equal(body.error.code, 'invalid_api_key_error');
        assert.ok(!('type' in body.error), 'Sarvam errors carry a code and no type');
      } else if (provider === 'anthropic') {
        assert.equal(res.status, 401);
        assert.equal(body.error.type, 'authentication_error');
      } else if (provider === 'deepseek') {
        assert.equal(res.status, 401);
        assert.equal(body.error.type, 'authentication_error');
        assert.match(body.error.message, /^Authentication Fails/);
      } else {
        assert.equal(res.status, 401, provider);
        assert.equal(typeof body.error.message, 'string');
      }
    }
  }
});

test('auth: accepted header forms, Anthropic version, and noquota keys', async () => {
  assert.equal((await chat('sarvam', {}, { headers: { authorization: 'Bearer sk_sarvam' } })).status, 200);
  assert.equal((await chat('sarvam', {}, { headers: { 'api-subscription-key': 'sk_sarvam' } })).status, 200);
  // Anthropic takes x-api-key, not Bearer, and needs anthropic-version.
  assert.equal((await chat('anthropic', {}, { headers: { authorization: 'Bearer sk-ant' , 'anthropic-version': '2023-06-01' } })).status, 401);
  const nover = await chat('anthropic', {}, { headers: { 'x-api-key': 'sk-ant' } });
  assert.equal(nover.status, 400);
  assert.equal((await nover.json()).error.type, 'invalid_request_error');

  const ds = await chat('deepseek', {}, { headers: { authorization: 'Bearer sk-noquota' } });
  assert.equal(ds.status, 402);
  assert.equal((await ds.json()).error.message, 'Insufficient Balance');
  const oa = await chat('openai', {}, { headers: { authorization: 'Bearer sk-noquota' } });
  assert.equal(oa.status, 429);
  assert.equal((await oa.json()).error.code, 'insufficient_quota');
  const sv = await chat('sarvam', {}, { headers: { 'api-subscription-key': 'noquota' } });
  assert.equal(sv.status, 429);
  assert.equal((await sv.json()).error.code, 'insufficient_quota_error');
});

// -- status faults ----------------------------------------------------------------------------

test('status-<code> in each provider\'s own error shape', async () => {
  let res = await chat('openai', { model: 'mock-status-503' });
  assert.equal(res.status, 503);
  let body = await res.json();
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.type, 'server_error');

  res = await chat('anthropic', { model: 'mock-status-529', stream: true });
  assert.equal(res.status, 529);
  body = await res.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'overloaded_error');
  assert.match(body.request_id, /^req_/);

  for (const [code, type] of [[400, 'invalid_request_error'], [401, 'authentication_error'], [403, 'permission_error'], [404, 'not_found_error'], [429, 'rate_limit_error'], [500, 'api_error'], [504, 'timeout_error']]) {
    const r = await chat('anthropic', { model: `mock-status-${code}` });
    assert.equal(r.status, code);
    assert.equal((await r.json()).error.type, type);
  }

  res = await chat('groq', { model: 'mock-status-498' });
  assert.equal(res.status, 498);
  assert.equal((await res.json()).error.code, 'capacity_exceeded');

  res = await chat('sarvam', { model: 'mock-status-500' });
  body = await res.json();
  assert.equal(res.status, 500);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);

  res = await chat('together', { model: 'mock-status-503' });
  assert.equal(res.status, 503);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  assert.equal(await res.text(), 'The server is overloaded or not ready yet.');
  res = await chat('together', { model: 'mock-status-500' });
  assert.equal(typeof (await res.json()).error, 'string');

  res = await chat('deepseek', { model: 'mock-status-402' });
  assert.equal(res.status, 402);
  assert.equal((await res.json()).error.message, 'Insufficient Balance');
});

test('429 retry headers: seconds, HTTP-date, ms, none; x-should-retry', async () => {
  let res = await chat('openai', { model: 'mock-status-429-ra-7' });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  assert.equal((await res.json()).error.code, 'rate_limit_exceeded');

  res = await chat('groq', { model: 'mock-status-429-ra-date-30' });
  const when = Date.parse(res.headers.get('retry-after'));
  assert.ok(Number.isFinite(when));
  assert.ok(when > Date.now() + 20000 && when < Date.now() + 40000);
  await res.arrayBuffer();

  res = await chat('openai', { model: 'mock-status-429-ra-ms-1500' });
  assert.equal(res.headers.get('retry-after-ms'), '1500');
  assert.equal(res.headers.get('retry-after'), null);
  await res.arrayBuffer();

  res = await chat('openai', { model: 'mock-status-429' });
  assert.equal(res.headers.get('retry-after'), null);
  assert.equal(res.headers.get('retry-after-ms'), null);
  await res.arrayBuffer();

  res = await chat('openai', { model: 'mock-status-502-xsr-true' });
  assert.equal(res.status, 502);
  assert.equal(res.headers.get('x-should-retry'), 'true');
  await res.arrayBuffer();
});

test('html-<code> and empty-<code>', async () => {
  let res = await chat('openai', { model: 'mock-html-502' });
  assert.equal(res.status, 502);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(await res.text(), /<html/);
  res = await chat('anthropic', { model: 'mock-empty-413' });
  assert.equal(res.status, 413);
  assert.equal(await res.text(), '');
});

test('unknown mock behaviour is a loud 400; unknown paths 404 JSON', async () => {
  const res = await chat('openai', { model: 'mock-no-such-thing' });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /unknown mock behaviour 'no-such-thing'/);
  const nf = await fetch(`${base}/nowhere`);
  assert.equal(nf.status, 404);
  assert.ok((await nf.json()).error);
  const nf2 = await fetch(`${base}/openai/v1/assistants`, { method: 'POST', headers: providers.openai.auth, body: '{}' });
  assert.equal(nf2.status, 404);
  assert.ok((await nf2.json()).error.message);
});

// -- connection faults ------------------------------------------------------------------------

test('reset-before: the client sees ECONNRESET and no bytes', async () => {
  const r = await raw(rawChat('openai', { model: 'mock-reset-before' }));
  assert.equal(r.how, 'error');
  assert.equal(r.error.code, 'ECONNRESET');
  assert.equal(r.buf.length, 0);
});

// Linux reports an RST that follows unread data as EOF to a reader that drains the data first,
// so after data the client may see either; reset-before (no data) shows the RST itself.
const endedByReset = (r) => (r.how === 'error' && r.error.code === 'ECONNRESET') || r.how === 'fin';

test('reset-mid-2: two content chunks, then the connection is reset', async () => {
  const r = await raw(rawChat('groq', { model: 'mock-reset-mid-2', stream: true }));
  assert.ok(endedByReset(r), r.how);
  const { status, body } = splitResponse(r.buf);
  assert.equal(status, 200);
  const d = dechunk(body);
  assert.equal(d.complete, false);
  const text = Buffer.concat(d.payloads).toString('utf8');
  const content = jsonEvents(text).filter((c) => c.json.choices[0]?.delta?.content);
  assert.equal(content.length, 2);
  assert.ok(!text.includes('[DONE]'));

  const nonStream = await raw(rawChat('openai', { model: 'mock-reset-mid' }));
  assert.ok(endedByReset(nonStream), nonStream.how);
  const res = splitResponse(nonStream.buf);
  assert.ok(res.body.length < Number(res.headers['content-length']));
});

test('truncations: fin, chunked, length', async () => {
  let r = await raw(rawChat('openai', { model: 'mock-truncate-fin', stream: true }));
  assert.equal(r.how, 'fin');
  let res = splitResponse(r.buf);
  let d = dechunk(res.body);
  assert.equal(d.complete, true, 'clean end of body');
  assert.ok(!Buffer.concat(d.payloads).includes('[DONE]'));

  r = await raw(rawChat('anthropic', { model: 'mock-truncate-chunked', stream: true }));
  assert.equal(r.how, 'fin');
  res = splitResponse(r.buf);
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  d = dechunk(res.body);
  assert.equal(d.complete, false, 'no terminating 0-chunk');
  assert.ok(!Buffer.concat(d.payloads).includes('message_stop'));

  r = await raw(rawChat('deepseek', { model: 'mock-truncate-length' }));
  assert.equal(r.how, 'fin');
  res = splitResponse(r.buf);
  assert.ok(Number(res.headers['content-length']) > res.body.length);

  r = await raw(rawChat('openai', { model: 'mock-truncate-fin' }));
  assert.equal(r.how, 'fin');
  res = splitResponse(r.buf);
  assert.equal(res.headers.connection, 'close');
  assert.equal(res.headers['content-length'], undefined);
  assert.throws(() => JSON.parse(res.body.toString('utf8')));
});

test('inband-error-<k>: OpenAI data error, Anthropic event: error, Groq x_groq.error', async () => {
  let chunks = jsonEvents(await readAll(await chat('openai', { model: 'mock-inband-error-1', stream: true })));
  assert.equal(chunks.filter((c) => c.json.choices?.[0]?.delta?.content).length, 1);
  assert.equal(chunks.at(-1).json.error.type, 'server_error');

  const events = parseSse(await readAll(await chat('anthropic', { model: 'mock-inband-error-0', stream: true })));
  assert.ok(!events.some((e) => e.event === 'content_block_delta'));
  assert.equal(events.at(-1).event, 'error');
  assert.equal(JSON.parse(events.at(-1).data).error.type, 'overloaded_error');

  chunks = jsonEvents(await readAll(await chat('groq', { model: 'mock-inband-error-2', stream: true })));
  assert.equal(typeof chunks.at(-1).json.x_groq.error, 'string');
});

test('malformed-body, malformed-event, error-200, empty-choices', async () => {
  let res = await chat('openai', { model: 'mock-malformed-body' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '{"id":');

  const events = parseSse(await readAll(await chat('openai', { model: 'mock-malformed-event', stream: true })));
  const bad = events.filter((e) => { try { JSON.parse(e.data); return false; } catch { return e.data !== '[DONE]'; } });
  assert.equal(bad.length, 1);

  res = await chat('sarvam', { model: 'mock-error-200' });
  assert.equal(res.status, 200);
  assert.ok((await res.json()).error);

  res = await chat('openai', { model: 'mock-empty-choices' });
  assert.deepEqual((await res.json()).choices, []);
});

// -- timing faults ----------------------------------------------------------------------------

test('stall-first-byte: headers at once, first body byte after the stall', async () => {
  const t0 = Date.now();
  const res = await chat('openai', { model: 'mock-stall-first-byte-500', stream: true });
  const tHeaders = Date.now() - t0;
  const reader = res.body.getReader();
  await reader.read();
  const tFirst = Date.now() - t0;
  assert.ok(tHeaders < 400, `headers after ${tHeaders} ms`);
  assert.ok(tFirst >= 480 && tFirst < 5000, `first byte after ${tFirst} ms`);
  while (!(await reader.read()).done) { /* drain */ }
});

test('stall-headers and chunk-delay', async () => {
  let t0 = Date.now();
  const res = await chat('anthropic', { model: 'mock-stall-headers-300' });
  assert.ok(Date.now() - t0 >= 290);
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  t0 = Date.now();
  const chunks = jsonEvents(await readAll(await chat('groq', { model: 'mock-ok+chunk-delay-40', stream: true })));
  assert.ok(chunks.length >= 5);
  assert.ok(Date.now() - t0 >= 40 * (chunks.length - 1), 'delays between chunks');
});

test('keepalive (DeepSeek comments, Anthropic pings) until the client leaves; its connection is freed', async () => {
  await reset();
  const ac = new AbortController();
  const res = await chat('deepseek', { model: 'mock-keepalive-20', stream: true }, { signal: ac.signal });
  const reader = res.body.getReader();
  let text = '';
  while ((text.match(/: keep-alive/g) ?? []).length < 3) {
    text += Buffer.from((await reader.read()).value).toString('utf8');
  }
  assert.ok(parseSse(text).every((e) => e.comments > 0 && e.data === ''));
  assert.equal((await stats()).in_flight, 1);
  ac.abort();
  await waitUntil(async () => { const s = await stats(); return s.in_flight === 0 && s.connections.closed >= 1; }, { what: 'keepalive connection freed' });

  const r = await raw(rawChat('anthropic', { model: 'mock-keepalive-10', stream: true }), { until: (t) => t.split('event: ping\ndata: {"type": "ping"}\n\n').length > 3, timeoutMs: 3000 });
  assert.equal(r.how, 'seen');

  const blank = await raw(rawChat('deepseek', { model: 'mock-keepalive-10' }), { until: (t) => t.split('\r\n1\r\n\n').length > 3, timeoutMs: 3000 });
  assert.equal(blank.how, 'seen');
  assert.equal(splitResponse(blank.buf).status, 200);
});

test('stall-mid: chunks then silence; a client abort frees the upstream connection', async () => {
  await reset();
  const before = await stats();
  const r = await raw(rawChat('openai', { model: 'mock-stall-mid-1', stream: true }), { until: (t) => t.includes('Hello from mock '), timeoutMs: 3000 });
  assert.equal(r.how, 'seen'); // raw() destroyed the socket: the client gave up
  await waitUntil(async () => {
    const s = await stats();
    return s.in_flight === 0 && s.connections.closed > before.connections.closed;
  }, { what: 'closed count after client abort' });
});

// -- framing ----------------------------------------------------------------------------------

test('framing: crlf, multiline-data, split-utf8, trickle, big', async () => {
  let text = await readAll(await chat('openai', { model: 'mock-crlf', stream: true }));
  assert.ok(text.includes('\r\n\r\n'));
  assert.ok(!/[^\r]\n/.test(text));
  assert.equal(parseSse(text).at(-1).data, '[DONE]');

  text = await readAll(await chat('together', { model: 'mock-multiline-data', stream: true }));
  assert.ok(/^data: .*\ndata: /m.test(text));
  assert.ok(jsonEvents(text).length >= 5);

  const r = await raw(rawChat('sarvam', { model: 'mock-split-utf8', stream: true }, 'Connection: close\r\n'), { timeoutMs: 5000 });
  const d = dechunk(splitResponse(r.buf).body);
  assert.equal(d.complete, true);
  const splitInside = d.payloads.some((p) => p[p.length - 1] >= 0xc0);
  assert.ok(splitInside, 'a chunk ends inside a multi-byte character');
  const joined = jsonEvents(Buffer.concat(d.payloads).toString('utf8'))
    .map((c) => c.json.choices[0]?.delta?.content ?? '').join('');
  assert.match(joined, /नमस्ते/);

  const trickled = await raw(rawChat('anthropic', { model: 'mock-trickle' }, 'Connection: close\r\n'), { timeoutMs: 5000 });
  assert.ok(trickled.chunks.length > 1);
  const tres = splitResponse(trickled.buf);
  assert.equal(JSON.parse(tres.body.toString('utf8')).content[0].type, 'text');

  const chunks = jsonEvents(await readAll(await chat('groq', { model: 'mock-big', stream: true })));
  const sizes = chunks.map((c) => c.json.choices[0]?.delta?.content?.length ?? 0);
  assert.ok(Math.max(...sizes) >= 1 << 20);
});

test('burst writes a whole stream at once without changing it', async () => {
  const plain = jsonEvents(await readAll(await chat('anthropic', { model: 'mock-ok', stream: true })));
  const burst = jsonEvents(await readAll(await chat('anthropic', { model: 'mock-ok+burst', stream: true })));
  assert.deepEqual(burst.map((e) => e.json.type), plain.map((e) => e.json.type));
  const r = await raw(rawChat('openai', { model: 'mock-reset-mid-1+burst', stream: true }));
  assert.ok(endedByReset(r), r.how);
  const text = Buffer.concat(dechunk(splitResponse(r.buf).body).payloads).toString('utf8');
  assert.equal(jsonEvents(text).filter((c) => c.json.choices[0]?.delta?.content).length, 1);
});

test('stamp: each stream event carries its send time (CLOCK_MONOTONIC ns), increasing', async () => {
  // Node's hrtime is CLOCK_MONOTONIC on Linux: the mock's stamps fall between these two.
  const t0 = process.hrtime.bigint();
  const text = await readAll(await chat('openai', { model: 'mock-ok+chunks-5+chunk-delay-5+stamp', stream: true }));
  const t1 = process.hrtime.bigint();
  const events = parseSse(text).filter((e) => e.data !== '');
  assert.equal(events.at(-1).data, '[DONE]', 'the terminal event stays as it is');
  const json = events.slice(0, -1);
  assert.equal(json.length, 7, 'role, 5 content chunks, finish');
  // Read as BigInt from the text: ns since boot may pass 2^53.
  const sent = json.map((e) => {
    const m = /^\{"x_mock_sent_ns":(\d+),"id":/.exec(e.data);
    assert.ok(m, `no send time first in ${e.data}`);
    return BigInt(m[1]);
  });
  assert.ok(sent[0] >= t0 && sent.at(-1) <= t1, `send times ${sent[0]}..${sent.at(-1)} outside ${t0}..${t1}`);
  for (let i = 1; i < sent.length; ++i) {
    assert.ok(sent[i] - sent[i - 1] >= 4_000_000n, `event ${i}: ${sent[i] - sent[i - 1]} ns after the one before`);
  }
  const chunks = json.map((e) => JSON.parse(e.data));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.x_mock_sent_ns > 0), 'still valid chunks');
  assert.match(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), /^Hello from mock openai!/);

  const plain = await readAll(await chat('openai', { model: 'mock-ok', stream: true }));
  assert.ok(!plain.includes('x_mock_sent_ns'), 'no send time without the token');
});

test('chunk-delay paces generation, not the close: usage and [DONE] follow the finish at once', async () => {
  // Providers send the usage chunk and [DONE] (Anthropic: message_delta, message_stop) right after
  // the finish reason. A pause before them too would make a client that asks for usage (the
  // gateway always does) wait one more delay per stream than one that does not.
  const gap = (a, b) => Number(b - a) / 1e6;
  const sentAt = (e) => BigInt(/^\{"x_mock_sent_ns":(\d+),/.exec(e.data)[1]);
  // Judged on the mock's own send stamps, not on when the events arrive here: a loaded machine
  // delays arrivals, never the order of the mock's pauses.
  const delay = 150;
  let events = parseSse(await readAll(await chat('openai',
    { model: `mock-ok+chunks-3+chunk-delay-${delay}+stamp`, stream: true, usage: true }))).filter((e) => e.data !== '');
  assert.deepEqual(events.map((e) => (e.data === '[DONE]' ? 'done' : JSON.parse(e.data).usage ? 'usage'
    : JSON.parse(e.data).choices[0].finish_reason ? 'finish' : 'chunk')),
  ['chunk', 'chunk', 'chunk', 'chunk', 'finish', 'usage', 'done']);
  const sent = events.slice(0, -1).map(sentAt);
  assert.ok(gap(sent[3], sent[4]) >= delay - 10, `the finish paused: ${gap(sent[3], sent[4])} ms`);
  assert.ok(gap(sent[4], sent[5]) < delay / 2, `the usage chunk did not: ${gap(sent[4], sent[5])} ms`);

  events = parseSse(await readAll(await chat('anthropic',
    { model: `mock-ok+chunks-2+chunk-delay-${delay}+stamp`, stream: true }))).filter((e) => e.data !== '');
  const names = events.map((e) => e.event);
  const stop = names.indexOf('content_block_stop');
  assert.deepEqual(names.slice(stop), ['content_block_stop', 'message_delta', 'message_stop']);
  const at = events.map(sentAt);
  assert.ok(gap(at[stop - 1], at[stop]) >= delay - 10, 'content_block_stop paused');
  assert.ok(gap(at[stop], at.at(-1)) < delay / 2, `message_delta, message_stop did not: ${gap(at[stop], at.at(-1))} ms`);
});

// -- scripts ----------------------------------------------------------------------------------

test('scripts are consumed FIFO per provider and override the model', async () => {
  await reset();
  const res = await postJson('/__mock/script', {
    provider: 'groq',
    steps: [{ status: 503 }, { status: 429, retry_after: '7' }, { behaviour: 'inband-error-0' },
      { status: 500, body: 'raw text', content_type: 'text/html' }, { ok: true }],
  });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).queued, 5);
  assert.equal((await chat('openai', { model: 'mock-ok' })).status, 200, 'other providers unaffected');
  let r = await chat('groq', { model: 'mock-status-404' });
  assert.equal(r.status, 503);
  await r.arrayBuffer();
  r = await chat('groq', {});
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');
  await r.arrayBuffer();
  const chunks = jsonEvents(await readAll(await chat('groq', { stream: true })));
  assert.equal(typeof chunks.at(-1).json.x_groq.error, 'string');
  r = await chat('groq', {});
  assert.equal(r.status, 500);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.equal(await r.text(), 'raw text');
  assert.equal((await chat('groq', { model: 'mock-status-404' })).status, 200);
  assert.equal((await chat('groq', { model: 'mock-status-404' })).status, 404, 'queue empty: model rules');

  const bad = await postJson('/__mock/script', { provider: 'groq', steps: [{ behaviour: 'nope' }] });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /steps\[0\]/);
  assert.equal((await postJson('/__mock/script', { provider: 'acme', steps: [] })).status, 400);
});

// -- introspection ----------------------------------------------------------------------------

test('/__mock/requests records method, path, lower-cased headers, raw body, stream, model', async () => {
  await reset();
  const body = JSON.stringify(chatBody('anthropic', { model: 'claude-z', stream: true }));
  await readAll(await chat('anthropic', body, { headers: { ...providers.anthropic.auth, 'X-Custom-Thing': 'yes' } }));
  await (await chat('sarvam', {})).arrayBuffer();
  const recs = await getJson('/__mock/requests');
  assert.equal(recs.length, 2);
  const [a, s] = recs;
  assert.ok(a.seq < s.seq);
  assert.equal(a.provider, 'anthropic');
  assert.equal(a.method, 'POST');
  assert.equal(a.path, '/anthropic/v1/messages');
  assert.equal(a.headers['x-api-key'], 'sk-ant-test');
  assert.equal(a.headers['anthropic-version'], '2023-06-01');
  assert.equal(a.headers['x-custom-thing'], 'yes');
  assert.equal(a.body, body);
  assert.equal(a.stream, true);
  assert.equal(a.model, 'claude-z');
  assert.equal(s.headers['api-subscription-key'], 'sk_sarvam');
  assert.equal(s.stream, false);
  const onlySarvam = await getJson('/__mock/requests?provider=sarvam');
  assert.deepEqual(onlySarvam.map((r) => r.provider), ['sarvam']);
});

test('--record-limit bounds the ring (0 records nothing)', async () => {
  const small = await startMock(['--record-limit', '3']);
  const none = await startMock(['--record-limit', '0']);
  try {
    for (let i = 0; i < 5; i++) {
      for (const m of [small, none]) {
        const res = await fetch(`${m.url}/openai/v1/chat/completions`, {
          method: 'POST', headers: providers.openai.auth, body: JSON.stringify(chatBody('openai', { text: `n${i}` })),
        });
        await res.arrayBuffer();
      }
    }
    const recs = await (await fetch(`${small.url}/__mock/requests`)).json();
    assert.deepEqual(recs.map((r) => JSON.parse(r.body).messages[0].content), ['n2', 'n3', 'n4']);
    assert.deepEqual(await (await fetch(`${none.url}/__mock/requests`)).json(), []);
    assert.equal((await (await fetch(`${none.url}/__mock/stats`)).json()).requests.openai, 5);
  } finally {
    assert.equal(await stopProcess(small), 0);
    assert.equal(await stopProcess(none), 0);
  }
});

test('/__mock/stats counts requests per provider and connections, incl. peer closes', async () => {
  await reset();
  for (const p of ['openai', 'groq', 'groq', 'deepseek']) await (await chat(p, {})).arrayBuffer();
  let s = await stats();
  assert.equal(s.requests.openai, 1);
  assert.equal(s.requests.groq, 2);
  assert.equal(s.requests.deepseek, 1);
  assert.equal(s.requests.total, 4);
  assert.equal(s.in_flight, 0);
  const closedBefore = s.connections.closed;
  const acceptedBefore = s.connections.accepted;
  // A keep-alive connection that the client then closes.
  const sock = net.connect(mock.port, mock.host);
  await new Promise((r) => sock.on('connect', r));
  await waitUntil(async () => (await stats()).connections.accepted > acceptedBefore, { what: 'accepted' });
  sock.end();
  await waitUntil(async () => (await stats()).connections.closed > closedBefore, { what: 'closed after peer close' });
  s = await stats();
  assert.ok(s.connections.open >= 1, 'the stats connection itself is open');

  await reset();
  s = await stats();
  assert.equal(s.requests.total, 0);
  assert.deepEqual(await getJson('/__mock/requests'), []);
  assert.equal(JSON.parse((await (await chat('openai', {})).text())).id, 'mock-1', 'reply ids restart');
});

// -- HTTP robustness --------------------------------------------------------------------------

test('keep-alive with pipelined requests answers in order', async () => {
  const one = rawChat('openai', { text: 'first' });
  const two = rawChat('openai', { text: 'second' }, 'Connection: close\r\n');
  const r = await raw(one + two);
  assert.equal(r.how, 'fin');
  const text = r.text;
  const i1 = text.indexOf('You said: first');
  const i2 = text.indexOf('You said: second');
  assert.ok(i1 > 0 && i2 > i1);
  assert.equal(text.match(/HTTP\/1\.1 200 OK/g).length, 2);
});

test('bad input never crashes the mock', async () => {
  let r = await raw('GARBAGE \x00\x01\x02 / HTTP/9\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 400/);
  r = await raw('POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 40000000\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 413/);
  const deep = '['.repeat(200000) + ']'.repeat(200000);
  let res = await chat('openai', deep);
  assert.equal(res.status, 400);
  await res.arrayBuffer();
  res = await chat('openai', '{"model": 5, "messages": "x"}');
  assert.equal(res.status, 400);
  await res.arrayBuffer();
  res = await chat('anthropic', JSON.stringify({ model: 'c', max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'text', text: 'bad \udc00 utf8 \u0000' }] }] }));
  assert.equal(res.status, 200);
  await res.json();
  const s = await stats();
  assert.ok(s.connections.accepted > 0);
});

test('random bytes and random JSON never crash the mock', async () => {
  let seed = 12345;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const alphabet = ['{', '}', '[', ']', '"', ':', ',', 'model', 'messages', 'stream', 'true', 'null', '1e999',
    '"mock-reset-mid+trickle"', '"mock-status-429-ra-"', '"role"', '"user"', '"content"', '\\u0000', '\xff', ' '];
  const jobs = [];
  for (let i = 0; i < 60; i++) {
    const bytes = Buffer.alloc(1 + rand(300));
    for (let k = 0; k < bytes.length; k++) bytes[k] = rand(256);
    const prefix = rand(2) ? 'POST /openai/v1/chat/completions HTTP/1.1\r\n' : '';
    jobs.push(raw(Buffer.concat([Buffer.from(prefix), bytes, Buffer.from('\r\n\r\n')]), { timeoutMs: 500 }));
    let body = '';
    for (let k = rand(40); k > 0; k--) body += alphabet[rand(alphabet.length)];
    const provider = Object.keys(providers)[rand(6)];
    jobs.push(chat(provider, body).then((r) => r.arrayBuffer()).catch(() => null));
  }
  await Promise.all(jobs);
  assert.equal((await fetch(`${base}/__mock/stats`)).status, 200);
});

// -- random-fault mode (POST /__mock/chaos) ------------------------------------------------------

test('chaos: a seeded share of one provider\'s calls fails with faults drawn from the list', async () => {
  const m = await startMock();
  try {
    const control = (body) => fetch(`${m.url}/__mock/chaos`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const call = async (provider) => {
      const p = providers[provider];
      try {
        const res = await fetch(m.url + p.path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...p.auth },
          body: JSON.stringify(chatBody(provider, { model: 'mock-ok' })),
        });
        await res.arrayBuffer();
        return res.status;
      } catch {
        return 'reset';  // reset-before: no bytes, then RST
      }
    };
    const chaosOf = async (provider) => (await (await fetch(`${m.url}/__mock/stats`)).json()).chaos[provider];

    // Refused settings name the field.
    for (const [body, field] of [
      [{ provider: 'groq', rate: 1.5, faults: [{ status: 503 }] }, 'rate'],
      [{ provider: 'groq', faults: [{ status: 503 }] }, 'rate'],
      [{ provider: 'nope', rate: 0.1, faults: [{ status: 503 }] }, 'provider'],
      [{ provider: 'groq', rate: 0.1, faults: [] }, 'faults'],
      [{ provider: 'groq', rate: 0.1, faults: ['no-such-fault'] }, 'faults[0]'],
      [{ provider: 'groq', rate: 0.1, faults: [{ status: 503 }], seed: -1 }, 'seed'],
    ]) {
      const res = await control(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.ok((await res.json()).error.message.startsWith(`${field}:`), JSON.stringify(body));
    }
    assert.equal(await chaosOf('groq'), undefined, 'a refused setting changes nothing');

    // rate 1: every call fails, with each listed fault drawn.
    let res = await control({ provider: 'groq', rate: 1, faults: [{ status: 503 }, 'reset-before'], seed: 3 });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, provider: 'groq', rate: 1, faults: 2 });
    const seen = [];
    for (let i = 0; i < 20; i++) seen.push(await call('groq'));
    assert.ok(seen.every((s) => s === 503 || s === 'reset'), seen.join(','));
    let c = await chaosOf('groq');
    assert.equal(c.calls, 20);
    assert.equal(c.faults, 20);
    assert.equal(c.by_fault['{"status":503}'], seen.filter((s) => s === 503).length);
    assert.equal(c.by_fault['reset-before'], seen.filter((s) => s === 'reset').length);
    assert.ok(c.by_fault['reset-before'] > 0 && c.by_fault['{"status":503}'] > 0);

    // Other providers are untouched; a queued script step comes first and is not counted.
    assert.equal(await call('openai'), 200);
    const script = await fetch(`${m.url}/__mock/script`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'groq', steps: [{ ok: true }] }),
    });
    assert.equal(script.status, 200);
    assert.equal(await call('groq'), 200);
    assert.equal((await chaosOf('groq')).calls, 20);

    // rate 0.1 over 200 calls: about a tenth fail, and the same seed gives the same sequence.
    const run = async () => {
      assert.equal((await control({ provider: 'groq', rate: 0.1, faults: [{ status: 500 }], seed: 18 })).status, 200);
      const out = [];
      for (let i = 0; i < 200; i++) out.push(await call('groq'));
      return out;
    };
    const first = await run();
    const failed = first.filter((s) => s === 500).length;
    assert.ok(failed >= 8 && failed <= 36, `${failed} of 200 failed`);
    assert.ok(first.every((s) => s === 200 || s === 500));
    c = await chaosOf('groq');
    assert.deepEqual([c.calls, c.faults, c.by_fault['{"status":500}']], [200, failed, failed]);
    assert.deepEqual(await run(), first);

    // rate 0 switches the mode off, and so does /__mock/reset.
    assert.equal((await control({ provider: 'groq', rate: 0, faults: [{ status: 500 }] })).status, 200);
    assert.equal(await chaosOf('groq'), undefined);
    for (let i = 0; i < 20; i++) assert.equal(await call('groq'), 200);
    assert.equal((await control({ provider: 'groq', rate: 1, faults: [{ status: 500 }] })).status, 200);
    assert.equal(await call('groq'), 500);
    assert.equal((await fetch(`${m.url}/__mock/reset`, { method: 'POST' })).status, 200);
    assert.deepEqual((await (await fetch(`${m.url}/__mock/stats`)).json()).chaos, {});
    assert.equal(await call('groq'), 200);
  } finally {
    assert.equal(await stopProcess(m), 0);
  }
});
