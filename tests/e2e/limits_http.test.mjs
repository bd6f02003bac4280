// The HTTP-level limits of issue 18, over plain HTTP and over TLS (the same session code):
// header field count (431), URL length (414), concurrent connections (one more: 503 with
// Retry-After, closed at once, while the others keep being served). All in the OpenAI envelope,
// all without reading unbounded input. Raw sockets, since real clients hide these.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

import { startStack, tempDir } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

const LIMITS = { max_header_count: 20, max_url_bytes: 1024, max_header_bytes: 8192, max_connections: 4 };

let dir;
let ca;
before(() => {
  dir = tempDir('ib-limits-http-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'),
    '-out', path.join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=limits', '-addext', 'subjectAltName=IP:127.0.0.1'],
  { stdio: 'ignore' });
  ca = fs.readFileSync(path.join(dir, 'c.pem'));
});

/// A connected client (plain, or TLS with the test CA trusted): {sock, received, closed, write,
/// destroy}; `received` accumulates what the server sent.
function connect(mode, port) {
  return new Promise((resolve, reject) => {
    const c = { received: '', closed: false, connected: false };
    c.sock = mode === 'tls'
      ? tls.connect({ host: '127.0.0.1', port, ca }, () => { c.connected = true; resolve(c); })
      : net.connect(port, '127.0.0.1', () => { c.connected = true; resolve(c); });
    c.write = (bytes) => c.sock.write(bytes);
    c.destroy = () => c.sock.destroy();
    c.sock.on('data', (d) => { c.received += d.toString('latin1'); });
    c.sock.on('error', (e) => { c.failed = e; if (!c.connected) reject(e); });
    c.sock.on('close', () => { c.closed = true; if (!c.connected) reject(new Error('closed before connecting')); });
  });
}

/// Parses the first response in `text`: {status, headers (lower-case names), body}.
function parseResponse(text) {
  const end = text.indexOf('\r\n\r\n');
  const [line, ...fields] = text.slice(0, end).split('\r\n');
  const headers = {};
  for (const f of fields) {
    const i = f.indexOf(':');
    headers[f.slice(0, i).toLowerCase()] = f.slice(i + 1).trim();
  }
  const body = text.slice(end + 4);
  return { status: Number(line.split(' ')[1]), headers, body, json: JSON.parse(body) };
}

/// Sends `wire` on a new connection; resolves once the server closed it.
async function exchange(mode, port, wire) {
  const s = await connect(mode, port);
  const started = Date.now();
  s.write(wire);
  await waitUntil(() => s.closed, { what: 'the server to close', timeoutMs: 5000 });
  return { ...parseResponse(s.received), ms: Date.now() - started };
}

/// One request on an open keep-alive socket; resolves with the parsed response.
async function request(s, target = '/healthz') {
  const before = s.received.length;
  s.write(`GET ${target} HTTP/1.1\r\nhost: x\r\n\r\n`);
  await waitUntil(() => s.received.length > before && s.received.slice(before).includes('}'), { what: 'a response' });
  return parseResponse(s.received.slice(before));
}

function assertEnvelope(r, status) {
  assert.equal(r.status, status, r.body);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(typeof r.json.error.type, 'string');
  assert.ok('param' in r.json.error && 'code' in r.json.error);
}

const get = (target, fields = 0) => `GET ${target} HTTP/1.1\r\nhost: x\r\n${
  Array.from({ length: fields }, (_, i) => `x-f${i}: v\r\n`).join('')}\r\n`;

for (const mode of ['plain', 'tls']) {
  describe(`over ${mode}`, () => {
    let stack;
    let port;
    before(async () => {
      const env = mode === 'tls' ? { IB_TLS_CERT_FILE: path.join(dir, 'c.pem'), IB_TLS_KEY_FILE: path.join(dir, 'k.pem') } : {};
      stack = await startStack({ env, config: { limits: LIMITS } });
      port = stack.gw.port;
    });
    after(async () => { await stack?.stop(); });

    test('header fields: 20 pass, 21 are a 431 in the envelope and the connection closes', async () => {
      const s = await connect(mode, port);
      s.write(get('/healthz', 19));  // host + 19 = 20 fields
      await waitUntil(() => s.received.includes('}'), { what: 'the answer' });
      assert.equal(parseResponse(s.received).status, 200);
      s.destroy();
      const r = await exchange(mode, port, get('/healthz', 20));
      assertEnvelope(r, 431);
      assert.match(r.json.error.message, /more than 20 header fields/);
      // Thousands of tiny fields within the byte limit: refused at the 21st, not parsed on.
      const many = await exchange(mode, port, get('/healthz', 1500).slice(0, 8000));
      assert.ok(many.status === 431, `status ${many.status}`);
    });

    test('URL length: 1024 bytes pass, 1025 and 100 000 are a 414, without reading it all', async () => {
      const at = (n) => `/healthz?${'a'.repeat(n - '/healthz?'.length)}`;
      const s = await connect(mode, port);
      assert.equal((await request(s, at(1024))).status, 200);
      s.destroy();
      const r = await exchange(mode, port, get(at(1025)));
      assertEnvelope(r, 414);
      assert.match(r.json.error.message, /limit of 1024 bytes/);
      // Far longer than the header limit (8 KiB): answered 414 once 8 KiB are in, the rest unread.
      const huge = await exchange(mode, port, get(at(100_000)));
      assertEnvelope(huge, 414);
      // A large header with a short URL stays a 431.
      const big = await exchange(mode, port, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(9000)}\r\n\r\n`);
      assertEnvelope(big, 431);
    });

    test('connections: one more than 4 is a 503 with Retry-After, closed at once; the 4 keep being served', async () => {
      // Every earlier connection has been closed; wait until the server has let them go.
      const held = [];
      for (let i = 0; i < 4; ++i) held.push(await connect(mode, port));
      for (const s of held) assert.equal((await request(s)).status, 200);
      const extra = await exchange(mode, port, get('/healthz'));
      assertEnvelope(extra, 503);
      assert.equal(extra.headers['retry-after'], '1');
      assert.equal(extra.headers.connection, 'close');
      assert.match(extra.json.error.message, /too many open connections/);
      assert.ok(extra.ms < 2000, `closed after ${extra.ms} ms`);
      // Many more at once: all refused quickly, none waits in the backlog.
      const burst = await Promise.all(Array.from({ length: 20 }, async () => {
        const s = await connect(mode, port).catch(() => null);
        if (!s) return 'reset';
        s.write(get('/healthz'));
        await waitUntil(() => s.closed, { what: 'a refused connection to close', timeoutMs: 5000 });
        return s.received ? parseResponse(s.received).status : 'reset';
      }));
      assert.ok(burst.every((x) => x === 503 || x === 'reset'), burst.join(','));
      assert.ok(burst.filter((x) => x === 503).length >= 1);
      // The held clients are still served, on the same connections.
      for (const s of held) assert.equal((await request(s)).status, 200);
      // One leaves: its place is free for a newcomer.
      held.pop().destroy();
      await waitUntil(async () => {
        const s = await connect(mode, port).catch(() => null);
        if (!s) return false;
        s.write(get('/healthz'));
        await waitUntil(() => s.closed || s.received.includes('}'), { what: 'an answer' });
        const ok = parseResponse(s.received).status === 200;
        s.destroy();
        return ok;
      }, { what: 'a freed connection slot', timeoutMs: 5000 });
      for (const s of held) s.destroy();
    });
  });
}
