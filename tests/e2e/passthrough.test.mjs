// Issue 15, "the rest of the OpenAI API": moderations, audio, images, files, batches, uploads and
// stored responses are forwarded to the `openai` provider with the user's OpenAI key, bodies and
// answers streamed both ways, through the official `openai` SDK unchanged. The mock provider
// stands in for OpenAI; where a test must watch bytes arrive upstream while the client is still
// sending, a small node server on loopback does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

import { toFile } from 'openai';

import {
  addKey, api, baseUrlVar, mockProviderEnv, mockRequests, mockReset, sdk, signup, startGateway,
  startStack, tempDir, userWithKeys,
} from './lib/stack.mjs';
import { stopProcess, waitUntil } from './lib/procs.mjs';

const MiB = 1024 * 1024;

/// `n` bytes of printable ASCII (so that the mock's recorded body, a JSON string, is the very
/// bytes sent), not periodic in any short stretch.
function payload(n, seed = 1) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; ++i) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = 0x21 + ((x >>> 16) % 94);
  }
  return b;
}

/// A raw HTTP/1.1 exchange on its own socket: `send(bytes)` writes, `response()` resolves to
/// {status, headers, body} once the answer is complete (or the socket closed).
function rawClient(url) {
  const u = new URL(url);
  const sock = net.connect(Number(u.port), u.hostname);
  let buf = Buffer.alloc(0);
  let closed = false;
  let writeError = null;
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  sock.on('close', () => { closed = true; });
  sock.on('error', (e) => { writeError = e; });
  const connected = new Promise((resolve) => sock.once('connect', resolve));
  const parse = () => {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const rest = buf.subarray(end + 4);
    if (headers['transfer-encoding'] === 'chunked') {
      let at = 0;
      const parts = [];
      for (;;) {
        const eol = rest.indexOf('\r\n', at);
        if (eol < 0) return closed ? { status, headers, body: null } : null;
        const size = parseInt(rest.subarray(at, eol).toString(), 16);
        if (size === 0) {
          if (rest.length < eol + 4) return null;
          return { status, headers, body: Buffer.concat(parts).toString(), end: end + 4 + eol + 4 };
        }
        if (rest.length < eol + 2 + size + 2) return closed ? { status, headers, body: null } : null;
        parts.push(rest.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
    }
    const len = headers['content-length'];
    if (len !== undefined && rest.length >= Number(len)) {
      return {
        status, headers, body: rest.subarray(0, Number(len)).toString(), end: end + 4 + Number(len),
      };
    }
    if (closed) return { status, headers, body: rest.toString() };
    return null;
  };
  return {
    sock,
    connected,
    get closed() { return closed; },
    get writeError() { return writeError; },
    send(bytes) {
      return new Promise((resolve) => {
        if (closed || sock.destroyed) return resolve(false);
        sock.write(bytes, (err) => resolve(!err));
      });
    },
    /// Drops the bytes of answer `res` (the next `response()` parses what follows it).
    consume(res) { buf = buf.subarray(res.end); },
    response(timeoutMs = 10000) {
      return waitUntil(parse, { timeoutMs, what: 'the raw response' });
    },
    close() { sock.destroy(); },
  };
}

/// A stand-in for OpenAI on loopback that counts the body bytes of each request as they arrive
/// and answers once the body is complete: 200 `{"received":N}`, or what `answer` says.
async function startUpstream(answer, tls) {
  const state = { requests: [], current: null };
  const handler = (req, res) => {
    const r = {
      method: req.method, url: req.url, headers: req.headers, received: 0,
      complete: false, aborted: false,
    };
    state.requests.push(r);
    state.current = r;
    req.on('data', (d) => { r.received += d.length; });
    req.on('aborted', () => { r.aborted = true; });
    req.on('close', () => { if (!r.complete) r.aborted = true; });
    req.on('end', () => {
      r.complete = true;
      if (answer) return answer(req, res, r);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ received: r.received }));
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    state,
    url: `${tls ? 'https://localhost' : 'http://127.0.0.1'}:${port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

describe('pass-through to the mock OpenAI', () => {
  let stack;
  let user;
  let client;

  before(async () => {
    stack = await startStack();
    user = await userWithKeys(stack.gw, ['openai']);
    client = sdk(stack.gw, user.api_key);
  });
  after(async () => { if (stack) await stack.stop(); });

  test('moderations.create is forwarded with the user\'s OpenAI key, never the gateway key', async () => {
    await mockReset(stack.mock);
    const { data, response } = await client.moderations
      .create({ input: ['I like kittens', 'and puppies'] })
      .withResponse();
    assert.equal(data.results.length, 2);
    assert.equal(data.results[0].flagged, false);
    assert.match(data.model, /^omni-moderation-latest/);
    assert.match(response.headers.get('x-request-id'), /^req_/);
    assert.equal(response.headers.get('x-inferbridge-provider'), 'openai');
    const [call] = (await mockRequests(stack.mock)).filter((r) => r.path.endsWith('/moderations'));
    assert.equal(call.method, 'POST');
    assert.equal(call.path, '/openai/v1/moderations');
    const h = call.headers;
    assert.equal(h.authorization, 'Bearer sk-test-openai-0123456789abcdef');
    assert.ok(!JSON.stringify(call.headers).includes(user.api_key), 'the gateway key leaked upstream');
    assert.match(h['content-type'], /^application\/json/);
    assert.deepEqual(JSON.parse(call.body), { input: ['I like kittens', 'and puppies'] });
    // One log line per pass-through, without body, query or key.
    const rid = response.headers.get('x-request-id');
    const line = await waitUntil(
      () => stack.gw.stdout().split('\n').find((l) => l.includes(rid)), { what: 'the log line' });
    const logged = JSON.parse(line);
    assert.equal(logged.msg, 'passthrough');
    assert.equal(logged.status, 200);
    assert.equal(logged.method, 'POST');
    assert.equal(logged.path, '/v1/moderations');
    assert.equal(logged.user_id, user.id);
    assert.ok(!stack.gw.stdout().includes('kittens'), 'a body reached the log');
    assert.ok(!stack.gw.stdout().includes('sk-test-openai'), 'a provider key reached the log');
  });

  test('an upstream error status and body come back as they are, without fallback', async () => {
    await mockReset(stack.mock);
    const err = await client.moderations
      .create({ model: 'mock-status-503', input: 'x' })
      .then(() => null, (e) => e);
    assert.ok(err, 'expected an error');
    assert.equal(err.status, 503);
    assert.equal(err.headers.get('x-inferbridge-provider'), 'openai');
    const calls = (await mockRequests(stack.mock)).filter((r) => r.path.endsWith('/moderations'));
    assert.equal(calls.length, 1, 'a pass-through is never retried elsewhere');
  });

  test('audio.transcriptions.create uploads a 5 MiB file intact (above limits.max_body_bytes)', async () => {
    await mockReset(stack.mock);
    const bytes = payload(5 * MiB + 17);
    const file = await toFile(bytes, 'speech.wav', { type: 'audio/wav' });
    const t = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
    assert.equal(t.text, `mock transcript of ${bytes.length} bytes`);
    const [call] = (await mockRequests(stack.mock))
      .filter((r) => r.path === '/openai/v1/audio/transcriptions');
    const h = call.headers;
    const boundary = /boundary=("?)([^";]+)\1/.exec(h['content-type'])?.[2];
    assert.ok(boundary, h['content-type']);
    const body = call.body;
    assert.ok(body.startsWith(`--${boundary}\r\n`), 'the body starts with the boundary');
    assert.ok(body.trimEnd().endsWith(`--${boundary}--`), 'the closing boundary is intact');
    const at = body.indexOf(bytes.subarray(0, 64).toString());
    assert.ok(at > 0, 'the file part is in the body');
    assert.equal(body.slice(at, at + bytes.length), bytes.toString(), 'every file byte arrived');
    if (h['content-length'] !== undefined) {
      assert.equal(Number(h['content-length']), Buffer.byteLength(body));
    }
  });

  test('audio.speech.create returns the binary audio unchanged', async () => {
    await mockReset(stack.mock);
    const res = await client.audio.speech.create({
      model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'Hello there',
    });
    assert.equal(res.headers.get('content-type'), 'audio/mpeg');
    const got = Buffer.from(await res.arrayBuffer());
    const direct = await fetch(`${stack.mock.url}/openai/v1/audio/speech`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-direct', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'Hello there' }),
    });
    const expected = Buffer.from(await direct.arrayBuffer());
    assert.ok(expected.length > 4000);
    assert.deepEqual(got, expected);
    assert.deepEqual([...got.subarray(0, 2)], [0xff, 0xfb]);
  });

  test('files: method, path and query go through; OpenAI\'s 404 body comes back', async () => {
    await mockReset(stack.mock);
    const err = await client.files.list({ limit: 2 }).then(() => null, (e) => e);
    assert.equal(err?.status, 404);
    assert.match(err.message, /mock_provider: no route for GET \/openai\/v1\/files\?limit=2/);
    const del = await client.files.delete('file-abc').then(() => null, (e) => e);
    assert.equal(del?.status, 404);
    const calls = await mockRequests(stack.mock);
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path}`),
      ['GET /openai/v1/files?limit=2', 'DELETE /openai/v1/files/file-abc'],
    );
  });

  test('stored responses GET is forwarded to OpenAI', async () => {
    await mockReset(stack.mock);
    const err = await client.responses.retrieve('resp_123').then(() => null, (e) => e);
    assert.equal(err?.status, 404);
    const [call] = await mockRequests(stack.mock);
    assert.equal(`${call.method} ${call.path}`, 'GET /openai/v1/responses/resp_123');
  });

  test('without an OpenAI key: 424 in the OpenAI envelope, nothing sent', async () => {
    await mockReset(stack.mock);
    const u = await signup(stack.gw);
    await addKey(stack.gw, u.api_key, 'groq');
    const err = await sdk(stack.gw, u.api_key).moderations.create({ input: 'x' })
      .then(() => null, (e) => e);
    assert.equal(err?.status, 424);
    assert.equal(err.code, 'no_provider_key');
    assert.match(err.message, /OpenAI key/);
    assert.equal((await mockRequests(stack.mock)).length, 0);
  });

  test('no gateway key: 401', async () => {
    const r = await api(stack.gw, 'POST', '/v1/moderations', { body: { input: 'x' } });
    assert.equal(r.status, 401);
  });

  test('an unknown path stays 404, a wrong method 405', async () => {
    const r = await api(stack.gw, 'GET', '/v1/nothing/here', { key: user.api_key });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.type, 'invalid_request_error');
    const deep = await api(stack.gw, 'GET', '/v1/files/a/b', { key: user.api_key });
    assert.equal(deep.status, 404);
    const wrong = await api(stack.gw, 'PUT', '/v1/moderations', { key: user.api_key, body: {} });
    assert.equal(wrong.status, 405);
  });
});

describe('pass-through streams the body as it arrives', () => {
  let upstream;
  let mockEnvStack;
  let gw;
  let user;
  const limit = 2 * MiB;

  let release;
  const released = new Promise((resolve) => { release = resolve; });

  before(async () => {
    upstream = await startUpstream((req, res, r) => {
      if (req.url.startsWith('/v1/responses/')) {
        // A stored response streamed back (`GET /v1/responses/{id}?stream=true`): the first
        // event now, the rest only once the test has seen the first one through the gateway.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: response.created\ndata: {"type":"response.created"}\n\n');
        released.then(() => {
          res.end('event: response.completed\ndata: {"type":"response.completed"}\n\n');
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ received: r.received }));
    });
    // The mock only to register the user's key; OpenAI is the node upstream.
    mockEnvStack = await startStack();
    gw = await startGateway({
      env: { ...mockProviderEnv(mockEnvStack.mock), [baseUrlVar('openai')]: `${upstream.url}/v1` },
      config: { limits: { max_passthrough_body_bytes: limit } },
    });
    user = await userWithKeys(gw, ['openai']);
  });
  after(async () => {
    if (gw) await stopProcess(gw);
    if (mockEnvStack) await mockEnvStack.stop();
    if (upstream) await upstream.close();
  });

  const head = (extra) => [
    'POST /v1/audio/transcriptions?x=1 HTTP/1.1',
    `host: 127.0.0.1:${gw.port}`,
    `authorization: Bearer ${user.api_key}`,
    'content-type: multipart/form-data; boundary=zzz',
    ...extra,
    '', '',
  ].join('\r\n');

  test('with Content-Length: the upstream has the first half before the client sends the rest', async () => {
    const body = payload(MiB + 5);
    const half = 512 * 1024;
    const c = rawClient(gw.url);
    await c.connected;
    const before = upstream.state.requests.length;
    await c.send(head([`content-length: ${body.length}`]));
    await c.send(body.subarray(0, half));
    await waitUntil(() => upstream.state.requests.length > before
      && upstream.state.current.received >= half, { what: 'the first half upstream' });
    const r = upstream.state.current;
    assert.equal(r.complete, false, 'the upstream saw the end before the client sent it');
    assert.equal(r.url, '/v1/audio/transcriptions?x=1');
    assert.equal(r.headers.authorization, 'Bearer sk-test-openai-0123456789abcdef');
    assert.equal(r.headers['content-length'], String(body.length));
    assert.equal(r.headers['content-type'], 'multipart/form-data; boundary=zzz');
    await c.send(body.subarray(half));
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { received: body.length });
    assert.equal(res.headers['x-inferbridge-provider'], 'openai');
    c.close();
  });

  test('chunked: streamed as it arrives, forwarded chunked', async () => {
    const c = rawClient(gw.url);
    await c.connected;
    const before = upstream.state.requests.length;
    await c.send(head(['transfer-encoding: chunked']));
    const piece = payload(256 * 1024, 7);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    await c.send(chunk);
    await waitUntil(() => upstream.state.requests.length > before
      && upstream.state.current.received >= piece.length, { what: 'the first chunk upstream' });
    const r = upstream.state.current;
    assert.equal(r.complete, false);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    await c.send(chunk);
    await c.send('0\r\n\r\n');
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { received: 2 * piece.length });
    c.close();
  });

  test('an SSE answer is relayed event by event', async () => {
    const res = await fetch(`${gw.url}/v1/responses/resp_1?stream=true`, {
      headers: { authorization: `Bearer ${user.api_key}`, accept: 'text/event-stream' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(upstream.state.current.headers.accept, 'text/event-stream');
    assert.equal(upstream.state.current.url, '/v1/responses/resp_1?stream=true');
    const reader = res.body.getReader();
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the stream ended before its first event');
      text += Buffer.from(value).toString();
    }
    assert.match(text, /response\.created/);
    assert.doesNotMatch(text, /response\.completed/);
    release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.match(text, /event: response\.completed/);
  });

  test('HEAD gets the head only, and the connection stays usable', async () => {
    const c = rawClient(gw.url);
    await c.connected;
    const req = (m) => [`${m} /v1/files/f1 HTTP/1.1`, `host: 127.0.0.1:${gw.port}`,
      `authorization: Bearer ${user.api_key}`, '', ''].join('\r\n');
    await c.send(req('HEAD'));
    const head = await c.response();
    assert.equal(head.status, 200);
    assert.equal(upstream.state.current.method, 'HEAD');
    assert.equal(head.body, '');
    // Any byte after the HEAD's head (a stray chunk terminator) would precede the next answer.
    c.consume(head);
    await c.send(req('GET'));
    const get = await c.response();
    assert.equal(get.status, 200, 'the HEAD answer left bytes on the connection');
    assert.deepEqual(JSON.parse(get.body), { received: 0 });
    c.close();
  });

  test('over the limit by Content-Length: 413 at once, nothing sent upstream', async () => {
    const before = upstream.state.requests.length;
    const c = rawClient(gw.url);
    await c.connected;
    await c.send(head([`content-length: ${limit + 1}`]));
    const res = await c.response();
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body).error.type, 'invalid_request_error');
    assert.equal(upstream.state.requests.length, before);
    c.close();
  });

  test('chunked over the limit: 413 once the count passes it, the upstream request aborted', async () => {
    const before = upstream.state.requests.length;
    const c = rawClient(gw.url);
    await c.connected;
    await c.send(head(['transfer-encoding: chunked']));
    const piece = payload(512 * 1024, 3);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    for (let i = 0; i < 6 && !c.closed; ++i) {
      if (!(await c.send(chunk))) break;
    }
    const res = await c.response();
    assert.equal(res.status, 413);
    assert.match(JSON.parse(res.body).error.message, /limit/);
    assert.equal(upstream.state.requests.length, before + 1);
    await waitUntil(() => upstream.state.current.aborted, { what: 'the upstream abort' });
    assert.equal(upstream.state.current.complete, false);
    assert.ok(upstream.state.current.received <= limit);
    c.close();
  });

  test('a client that leaves mid-upload aborts the upstream request', async () => {
    const before = upstream.state.requests.length;
    const c = rawClient(gw.url);
    await c.connected;
    await c.send(head(['content-length: 1000000']));
    await c.send(payload(1000));
    await waitUntil(() => upstream.state.requests.length > before
      && upstream.state.current.received >= 1000, { what: 'the first bytes upstream' });
    c.close();
    await waitUntil(() => upstream.state.current.aborted, { what: 'the upstream abort' });
  });
});

describe('pass-through failures upstream', () => {
  let upstream;
  let mockEnvStack;
  let gw;
  let user;

  before(async () => {
    // Never answers: the gateway's deadline must.
    upstream = await startUpstream(() => {});
    mockEnvStack = await startStack();
    gw = await startGateway({
      env: { ...mockProviderEnv(mockEnvStack.mock), [baseUrlVar('openai')]: `${upstream.url}/v1` },
    });
    user = await userWithKeys(gw, ['openai']);
  });
  after(async () => {
    if (gw) await stopProcess(gw);
    if (mockEnvStack) await mockEnvStack.stop();
    if (upstream) await upstream.close();
  });

  test('no answer within x-inferbridge-timeout-ms: 504 in the OpenAI envelope', async () => {
    const err = await sdk(gw, user.api_key)
      .moderations.create({ input: 'x' }, { headers: { 'x-inferbridge-timeout-ms': '300' } })
      .then(() => null, (e) => e);
    assert.equal(err?.status, 504);
    assert.equal(err.code, 'upstream_timeout');
  });

  test('OpenAI unreachable: 502', async () => {
    const closed = await startUpstream();
    const url = closed.url;
    await closed.close();
    const g = await startGateway({
      env: { ...mockProviderEnv(mockEnvStack.mock), [baseUrlVar('openai')]: `${url}/v1` },
    });
    try {
      const u = await userWithKeys(g, ['openai']);
      const err = await sdk(g, u.api_key).moderations.create({ input: 'x' })
        .then(() => null, (e) => e);
      assert.equal(err?.status, 502);
      assert.equal(err.code, 'upstream_error');
    } finally {
      await stopProcess(g);
    }
  });
});

describe('pass-through to an HTTPS upstream', () => {
  let upstream;
  let mockEnvStack;
  let gw;
  let user;

  before(async () => {
    const dir = tempDir('ib-pt-tls-');
    const key = path.join(dir, 'localhost.key');
    const cert = path.join(dir, 'localhost.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
      '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    upstream = await startUpstream(undefined, { key: fs.readFileSync(key), cert: fs.readFileSync(cert) });
    mockEnvStack = await startStack();
    gw = await startGateway({
      env: {
        ...mockProviderEnv(mockEnvStack.mock),
        [baseUrlVar('openai')]: `${upstream.url}/v1`,
        IB_EXTRA_CA_FILE: cert,
      },
    });
    user = await userWithKeys(gw, ['openai']);
  });
  after(async () => {
    if (gw) await stopProcess(gw);
    if (mockEnvStack) await mockEnvStack.stop();
    if (upstream) await upstream.close();
  });

  test('an upload is streamed over TLS, with Content-Length and chunked', async () => {
    const bytes = payload(2 * MiB + 3, 11);
    const file = await toFile(bytes, 'a.wav', { type: 'audio/wav' });
    const res = await sdk(gw, user.api_key).audio.transcriptions.create({ file, model: 'whisper-1' });
    assert.ok(res.received > bytes.length, JSON.stringify(res));
    assert.equal(upstream.state.current.headers['content-length'], String(res.received));

    const c = rawClient(gw.url);
    await c.connected;
    await c.send([
      'POST /v1/files HTTP/1.1', `host: 127.0.0.1:${gw.port}`, `authorization: Bearer ${user.api_key}`,
      'content-type: multipart/form-data; boundary=b', 'transfer-encoding: chunked', '', '',
    ].join('\r\n'));
    const piece = payload(300 * 1024, 5);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    await c.send(chunk);
    await waitUntil(() => upstream.state.current.url === '/v1/files'
      && upstream.state.current.received >= piece.length, { what: 'the first chunk over TLS' });
    assert.equal(upstream.state.current.complete, false);
    await c.send(Buffer.concat([chunk, Buffer.from('0\r\n\r\n')]));
    const answer = await c.response();
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body), { received: 2 * piece.length });
    c.close();
  });
});
