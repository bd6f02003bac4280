// The TLS listener (issue 18): `tls.cert_file`/`tls.key_file` make the gateway speak HTTP/1.1 over
// TLS with the same session code as plain HTTP. The official `openai` SDK connects with the
// test's certificate trusted (NODE_EXTRA_CA_CERTS in a child process) and chats, streamed and
// not; SIGHUP loads a new certificate for new connections, a bad one on SIGHUP is logged and the
// old one kept; a bad one at start is exit 2. Certificates are made at test time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

import { startGateway, startStack, tempDir, mockProviderEnv } from './lib/stack.mjs';
import { repoRoot, stopProcess, waitUntil } from './lib/procs.mjs';

let dir;
let stack;
let certs;
const certFile = () => path.join(dir, 'live.pem');
const keyFile = () => path.join(dir, 'live.key');

function makeCert(name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
  { stdio: 'ignore' });
  return { key, cert };
}

function install({ key, cert }) {
  fs.copyFileSync(cert, certFile());
  fs.copyFileSync(key, keyFile());
}

/// The CN of the certificate a new TLS connection to `port` is shown (not verified here).
function peerName(port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      const version = s.getProtocol();
      s.end();
      resolve({ cn, version });
    });
    s.on('error', reject);
  });
}

/// Runs `code` (an ES module body) in a child node with `ca` trusted through NODE_EXTRA_CA_CERTS,
/// from tests/e2e so that `openai` resolves; resolves to its stdout parsed as JSON.
function runTrusting(ca, code, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd: path.join(repoRoot, 'tests', 'e2e'),
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${err}`));
      try { resolve(JSON.parse(out)); } catch (e) { reject(new Error(`bad child output ${out} ${err}`)); }
    });
  });
}

/// Signs up over https, adds keys, chats with the SDK (not streamed, then streamed).
const sdkScript = `
import OpenAI from 'openai';
const base = process.env.GW_URL;
async function call(method, p, body, key) {
  const h = { 'content-type': 'application/json' };
  if (key) h.authorization = 'Bearer ' + key;
  const r = await fetch(base + p, { method, headers: h, body: JSON.stringify(body) });
  if (r.status >= 300) throw new Error(p + ' ' + r.status + ' ' + await r.text());
  return r.json();
}
const u = await call('POST', '/v1/users', { email: 'tls' + Date.now() + '@example.com' });
for (const p of ['openai', 'sarvam']) {
  await call('POST', '/v1/keys', { provider: p, api_key: 'sk-test-' + p + '-0123456789abcdef' }, u.api_key);
}
const client = new OpenAI({ apiKey: u.api_key, baseURL: base + '/v1', maxRetries: 0, timeout: 20000 });
const messages = [{ role: 'user', content: 'over tls' }];
const plain = await client.chat.completions.create({ model: 'ib/balanced', messages });
const stream = await client.chat.completions.create({ model: 'ib/balanced', messages, stream: true });
let text = '';
let chunks = 0;
for await (const c of stream) { chunks += 1; text += c.choices[0]?.delta?.content ?? ''; }
console.log(JSON.stringify({ plain: plain.choices[0].message.content, text, chunks }));
`;

before(async () => {
  dir = tempDir('ib-tls-listener-');
  certs = { a: makeCert('ib-a'), b: makeCert('ib-b') };
  install(certs.a);
  stack = await startStack({
    env: { IB_TLS_CERT_FILE: certFile(), IB_TLS_KEY_FILE: keyFile() },
    config: { limits: { client_read_timeout_ms: 500 } },
  });
  stack.gw.tlsUrl = `https://127.0.0.1:${stack.gw.port}`;
});
after(async () => { await stack?.stop(); });

test('the openai SDK chats over TLS with the certificate trusted, streamed and not', async () => {
  const r = await runTrusting(certs.a.cert, sdkScript, { GW_URL: stack.gw.tlsUrl });
  assert.equal(r.plain, 'Hello from mock openai! You said: over tls');
  assert.equal(r.text, 'Hello from mock openai! You said: over tls');
  assert.ok(r.chunks > 1, `chunks: ${r.chunks}`);
  const { version } = await peerName(stack.gw.port);
  assert.match(version, /^TLSv1\.[23]$/);
});

test('TLS below 1.2 and ciphers without forward secrecy are refused; the listener keeps serving', async () => {
  const handshake = (opts) => new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: stack.gw.port, rejectUnauthorized: false, ...opts }, () => {
      const got = { version: s.getProtocol(), cipher: s.getCipher().name };
      s.end();
      resolve(got);
    });
    s.on('error', reject);
  });
  await assert.rejects(
    handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }),
    { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' },
  );
  await assert.rejects(
    handshake({ maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:AES256-GCM-SHA384' }),
    { code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' },
  );
  assert.deepEqual(await handshake({ maxVersion: 'TLSv1.2' }),
    { version: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
  assert.equal((await peerName(stack.gw.port)).cn, 'ib-a');
});

test('plain HTTP, garbage and a silent client on the TLS port are closed, bounded, without harm', async () => {
  const port = stack.gw.port;
  const raw = (bytes) => new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1', () => { if (bytes) s.write(bytes); });
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => resolve(Date.now() - started));
  });
  const plainMs = await raw('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
  const garbageMs = await raw(Buffer.alloc(4096, 0x16));
  // No bytes at all: the handshake is bounded by the read timeout (500 ms here).
  const silentMs = await raw(null);
  assert.ok(plainMs < 2000 && garbageMs < 2000, `${plainMs} ${garbageMs}`);
  assert.ok(silentMs >= 400 && silentMs < 3000, `silent client closed after ${silentMs} ms`);
  // Many failed handshakes at once, then a good client.
  await Promise.all(Array.from({ length: 50 }, (_, i) => raw(i % 2 ? Buffer.alloc(100, 0x16) : 'junk\r\n\r\n')));
  assert.equal((await peerName(port)).cn, 'ib-a');
  assert.equal(stack.gw.proc.exitCode, null);
});

test('SIGHUP: new connections get the new certificate; a bad file keeps the old one', async () => {
  const { gw } = stack;
  assert.equal((await peerName(gw.port)).cn, 'ib-a');
  // A connection open across the reload keeps its own session.
  const held = await new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: gw.port, ca: fs.readFileSync(certs.a.cert) }, () => resolve(s));
    s.on('error', reject);
  });
  install(certs.b);
  gw.proc.kill('SIGHUP');
  await waitUntil(async () => (await peerName(gw.port)).cn === 'ib-b', { what: 'the new certificate' });
  // The log is written in batches: wait for the line rather than expect it at once.
  await waitUntil(() => /TLS certificate reloaded/.test(gw.stdout()), { what: 'the reload in the log' });
  const viaHeld = await new Promise((resolve) => {
    let out = '';
    held.on('data', (d) => { out += d; if (out.includes('"status"')) resolve(out); });
    held.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
  });
  assert.match(viaHeld, /^HTTP\/1\.1 200/);
  held.destroy();
  // The SDK trusting only the new certificate chats.
  const r = await runTrusting(certs.b.cert, sdkScript, { GW_URL: gw.tlsUrl });
  assert.equal(r.plain, 'Hello from mock openai! You said: over tls');

  // A bad certificate on SIGHUP: logged, and the old one stays.
  fs.writeFileSync(certFile(), 'not a certificate\n');
  gw.proc.kill('SIGHUP');
  await waitUntil(() => /TLS reload failed/.test(gw.stdout()), { what: 'the reload error in the log' });
  const line = gw.stdout().split('\n').find((l) => l.includes('TLS reload failed'));
  assert.equal(JSON.parse(line).level, 'error');
  assert.match(line, /live\.pem/);
  assert.equal((await peerName(gw.port)).cn, 'ib-b');
  const again = await runTrusting(certs.b.cert, sdkScript, { GW_URL: gw.tlsUrl });
  assert.equal(again.plain, 'Hello from mock openai! You said: over tls');
  // A key that does not match the certificate: refused too.
  fs.copyFileSync(certs.a.cert, certFile());
  fs.copyFileSync(certs.b.key, keyFile());
  gw.proc.kill('SIGHUP');
  await waitUntil(() => gw.stdout().split('TLS reload failed').length === 3, { what: 'the second reload error' });
  assert.equal((await peerName(gw.port)).cn, 'ib-b');
  install(certs.a);
});

test('a bad certificate at start is a startup error: exit 2 and a message on stderr', async () => {
  const bad = path.join(dir, 'bad.pem');
  fs.writeFileSync(bad, 'garbage\n');
  await assert.rejects(
    startGateway({ env: { ...mockProviderEnv(stack.mock), IB_TLS_CERT_FILE: bad, IB_TLS_KEY_FILE: certs.a.key } }),
    (e) => /exited \(2\) before listening/.test(e.message) && /bad\.pem/.test(e.message),
  );
  await assert.rejects(
    startGateway({ env: { IB_TLS_CERT_FILE: path.join(dir, 'missing.pem'), IB_TLS_KEY_FILE: certs.a.key } }),
    (e) => /exited \(2\) before listening/.test(e.message) && /missing\.pem/.test(e.message),
  );
});
