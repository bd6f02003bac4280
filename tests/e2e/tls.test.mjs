// Upstream HTTPS: certificates are verified against the trusted store (plus IB_EXTRA_CA_FILE),
// with the host name or IP address checked; an untrusted or mismatched certificate is a connection
// failure that falls back. The upstreams here are a small HTTPS server, and TLS terminators in
// front of the mock (so every mock behaviour runs over TLS), with certificates made at test time.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

import {
  callsTo, mockPrefix, mockProviderEnv, mockReset, mockScript, sdk, startGateway, startStack, tempDir,
  userWithKeys, userMessage,
} from './lib/stack.mjs';
import { stopProcess, waitUntil } from './lib/procs.mjs';

let stack;
let dir;
const servers = [];

function makeCert(name, san) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
  return { key, cert };
}

/// An HTTPS "OpenAI" that answers every chat call with a fixed completion.
function startUpstream({ key, cert }) {
  return new Promise((resolve) => {
    const srv = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          id: 'chatcmpl-tls', object: 'chat.completion', created: 1, model: 'gpt-tls',
          choices: [{ index: 0, message: { role: 'assistant', content: 'over TLS' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
        }));
      });
    });
    servers.push(srv);
    srv.listen(0, '127.0.0.1', () => resolve(srv.address().port));
  });
}

before(async () => {
  dir = tempDir('ib-tls-');
  stack = await startStack();
});
after(async () => {
  for (const s of servers) s.close();
  await stack?.stop();
});

async function viaOpenAi(env) {
  const gw = await startGateway({ env: { ...mockProviderEnv(stack.mock), ...env } });
  try {
    const u = await userWithKeys(gw, ['openai', 'sarvam']);
    const { data, response } = await sdk(gw, u.api_key).chat.completions
      .create({ model: 'ib/balanced', messages: userMessage() }).withResponse();
    return { data, attempts: response.headers.get('x-inferbridge-attempts') };
  } finally {
    await stopProcess(gw);
  }
}

test('a trusted certificate for the right host name serves over TLS', async () => {
  const port = await startUpstream(makeCert('localhost', 'DNS:localhost,IP:127.0.0.1'));
  const r = await viaOpenAi({
    IB_OPENAI_BASE_URL: `https://localhost:${port}/v1`,
    IB_EXTRA_CA_FILE: path.join(dir, 'localhost.pem'),
  });
  assert.equal(r.attempts, 'openai=200');
  assert.equal(r.data.choices[0].message.content, 'over TLS');
});

test('an untrusted certificate is refused and the tier falls back', async () => {
  const port = await startUpstream(makeCert('untrusted', 'DNS:localhost,IP:127.0.0.1'));
  const r = await viaOpenAi({ IB_OPENAI_BASE_URL: `https://localhost:${port}/v1` });
  assert.equal(r.attempts, 'openai=connect_error;sarvam=200');
});

test('an IP address is checked against the certificate\'s IP addresses', async () => {
  const right = await startUpstream(makeCert('by-ip', 'IP:127.0.0.1'));
  let r = await viaOpenAi({
    IB_OPENAI_BASE_URL: `https://127.0.0.1:${right}/v1`,
    IB_EXTRA_CA_FILE: path.join(dir, 'by-ip.pem'),
  });
  assert.equal(r.attempts, 'openai=200');
  assert.equal(r.data.choices[0].message.content, 'over TLS');
  // A certificate naming only a DNS name does not cover the address it is reached at.
  const wrong = await startUpstream(makeCert('by-name', 'DNS:localhost'));
  r = await viaOpenAi({
    IB_OPENAI_BASE_URL: `https://127.0.0.1:${wrong}/v1`,
    IB_EXTRA_CA_FILE: path.join(dir, 'by-name.pem'),
  });
  assert.equal(r.attempts, 'openai=connect_error;sarvam=200');
});

test('a trusted certificate for another host name is refused', async () => {
  const port = await startUpstream(makeCert('elsewhere', 'DNS:elsewhere.example'));
  const r = await viaOpenAi({
    IB_OPENAI_BASE_URL: `https://localhost:${port}/v1`,
    IB_EXTRA_CA_FILE: path.join(dir, 'elsewhere.pem'),
  });
  assert.equal(r.attempts, 'openai=connect_error;sarvam=200');
});

// -- every kind of exchange over TLS, through terminators in front of the mock ---------------------

/// A TLS terminator in front of the mock: decrypts and pipes each connection to it. `mode` says
/// how a connection ends when the mock closes it: 'pipe' with a close_notify, 'cut' with a bare
/// TCP close (no close_notify: a truncation). 'close-after-response' also closes (with a
/// close_notify) each connection once the mock's response (Content-Length framed) has gone
/// through, as a provider ends a kept-alive connection the gateway has pooled. Counts the
/// connections it accepted and those still open, and notes for each whether it resumed an
/// earlier TLS session.
function startTlsProxy({ key, cert }, mock, mode, maxVersion = 'TLSv1.3') {
  const target = new URL(mock.url);
  const stats = { accepted: 0, open: 0, resumed: [] };
  const srv = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert), maxVersion }, (client) => {
    stats.accepted += 1;
    stats.open += 1;
    stats.resumed.push(client.isSessionReused());
    const up = net.connect(Number(target.port), target.hostname);
    let head = Buffer.alloc(0);
    let bodyLeft = null;  // body bytes of the response still to pass, once its head is in
    client.pipe(up);
    up.on('data', (d) => {
      client.write(d);
      if (mode !== 'close-after-response') return;
      if (bodyLeft === null) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = /content-length:\s*(\d+)/i.exec(head.subarray(0, end).toString('latin1'));
        assert.ok(length, 'the mock framed its response by Content-Length');
        bodyLeft = Number(length[1]) - (head.length - end - 4);
      } else {
        bodyLeft -= d.length;
      }
      if (bodyLeft <= 0) client.end(() => client.destroy());
    });
    up.on('end', () => (mode === 'cut' ? client.destroy() : client.end()));
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    client.on('close', () => {
      stats.open -= 1;
      up.destroy();
    });
  });
  servers.push(srv);
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ port: srv.address().port, stats })));
}

describe('over TLS in front of the mock', () => {
  let gw;
  let user;
  const proxies = {};
  const FIRST_BYTE_MS = 300;

  before(async () => {
    const cert = makeCert('terminator', 'DNS:localhost');
    const env = { ...mockProviderEnv(stack.mock), IB_EXTRA_CA_FILE: cert.cert };
    // openai: a plain terminator; groq: truncations without close_notify; deepseek and together:
    // kept-alive connections closed by the upstream (together: over TLS 1.2).
    for (const [provider, mode, version] of [
      ['openai', 'pipe'], ['groq', 'cut'], ['deepseek', 'close-after-response'], ['together', 'close-after-response', 'TLSv1.2'],
    ]) {
      proxies[provider] = await startTlsProxy(cert, stack.mock, mode, version);
      env[`IB_${provider.toUpperCase()}_BASE_URL`] = `https://localhost:${proxies[provider].port}${mockPrefix(provider)}`;
    }
    const timeouts = { timeouts_ms: { connect: 2000, first_byte: FIRST_BYTE_MS, total: 10000 } };
    gw = await startGateway({
      env,
      config: {
        providers: { openai: timeouts, anthropic: {}, groq: timeouts, deepseek: timeouts, together: timeouts, sarvam: {} },
        tiers: {
          'ib/balanced': [{ provider: 'openai', model: 'gpt-4.1-mini' }, { provider: 'sarvam', model: 'sarvam-105b' }],
          't/groq': [{ provider: 'groq', model: 'llama-3.1-8b-instant' }, { provider: 'sarvam', model: 'sarvam-30b' }],
          't/deepseek': [{ provider: 'deepseek', model: 'deepseek-chat' }, { provider: 'sarvam', model: 'sarvam-30b' }],
          't/together': [{ provider: 'together', model: 'x' }, { provider: 'sarvam', model: 'sarvam-30b' }],
        },
      },
    });
    user = await userWithKeys(gw, ['openai', 'groq', 'deepseek', 'together', 'sarvam']);
  });
  after(async () => { await stopProcess(gw); });
  beforeEach(async () => { await mockReset(stack.mock); });

  const chat = (body = {}, model = 'ib/balanced') => sdk(gw, user.api_key).chat.completions
    .create({ model, messages: userMessage(), ...body }).withResponse();

  test('sequential requests share one kept-alive TLS connection', async () => {
    const before = proxies.openai.stats.accepted;
    for (let i = 0; i < 10; ++i) {
      const { data, response } = await chat();
      assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
      assert.match(data.choices[0].message.content, /Hello from mock openai/);
    }
    assert.ok(proxies.openai.stats.accepted - before <= 1, `${proxies.openai.stats.accepted - before} connections`);
  });

  test('a stream of many chunks arrives whole, chunk by chunk', async () => {
    await mockScript(stack.mock, 'openai', [{ behaviour: 'chunks-200' }]);
    const stream = await sdk(gw, user.api_key).chat.completions
      .create({ model: 'ib/balanced', messages: userMessage(), stream: true });
    let text = '';
    let pieces = 0;
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta?.content;
      if (d) {
        text += d;
        pieces += 1;
      }
    }
    assert.equal(pieces, 200);
    assert.match(text, /Hello from mock openai/);
  });

  test('a 1 MiB response, streamed and not, crosses many TLS records intact', async () => {
    await mockScript(stack.mock, 'openai', [{ behaviour: 'big' }]);
    const { data } = await chat();
    const text = data.choices[0].message.content;
    assert.ok(text.length >= 1 << 20, `${text.length} characters`);
    await mockScript(stack.mock, 'openai', [{ behaviour: 'big' }]);
    const stream = await sdk(gw, user.api_key).chat.completions
      .create({ model: 'ib/balanced', messages: userMessage(), stream: true });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, text);
  });

  test('a 2 MiB request body reaches the upstream whole', async () => {
    const content = 'x'.repeat(2 << 20);
    const { response } = await chat({ messages: userMessage(content) });
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
    const [call] = await callsTo(stack.mock, 'openai');
    assert.equal(JSON.parse(call.body).messages[0].content, content);
  });

  // Over plain TCP a close ends a body framed by the close; over TLS only a close_notify does (a
  // bare TCP close may be an attacker's truncation, RFC 5246 §7.2.1).
  for (const [framing, behaviour, notified, cut] of [
    ['Content-Length', 'truncate-length', 'reset', 'reset'],
    ['chunked', 'truncate-chunked', 'reset', 'reset'],
    ['the close', 'truncate-fin', 'bad_response', 'reset'],
  ]) {
    test(`a body framed by ${framing}, cut short with and without a close_notify`, async () => {
      await mockScript(stack.mock, 'openai', [{ behaviour }]);
      let { response } = await chat();
      assert.equal(response.headers.get('x-inferbridge-attempts'), `openai=${notified};sarvam=200`);
      await mockScript(stack.mock, 'groq', [{ behaviour }]);
      ({ response } = await chat({}, 't/groq'));
      assert.equal(response.headers.get('x-inferbridge-attempts'), `groq=${cut};sarvam=200`);
    });
  }

  test('a first-byte timeout closes the TLS connection under its read and falls back', async () => {
    await mockScript(stack.mock, 'openai', [{ behaviour: 'stall-first-byte-5000' }]);
    const t0 = Date.now();
    const { response } = await chat();
    const ms = Date.now() - t0;
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=first_byte_timeout;sarvam=200');
    assert.ok(ms >= FIRST_BYTE_MS && ms < FIRST_BYTE_MS + 2000, `fallback took ${ms} ms`);
    await waitUntil(() => proxies.openai.stats.open === 0, { what: 'the timed-out connection closed' });
  });

  test('a kept-alive connection the upstream has closed is replaced, and the request is not lost', async () => {
    const before = proxies.deepseek.stats.accepted;
    let { response } = await chat({}, 't/deepseek');
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'deepseek=200');
    await waitUntil(() => proxies.deepseek.stats.open === 0, { what: 'the upstream closing the connection' });
    ({ response } = await chat({}, 't/deepseek'));
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'deepseek=200');
    assert.equal(proxies.deepseek.stats.accepted - before, 2);
    assert.equal((await callsTo(stack.mock, 'deepseek')).length, 2);
  });

  // TLS 1.3 tickets are used once each, and Node's server gives two after a full handshake and
  // none after a resumed one: of three new connections in a row, two resume. A TLS 1.2 session
  // is resumed again and again.
  for (const [provider, version] of [['deepseek', 'TLS 1.3'], ['together', 'TLS 1.2']]) {
    test(`a new connection to the same upstream resumes a session of an earlier one (${version})`, async () => {
      const { stats } = proxies[provider];
      const first = stats.accepted;
      for (let i = 0; i < 3; ++i) {
        await waitUntil(() => stats.open === 0, { what: 'the upstream closing the connection' });
        const { response } = await chat({}, `t/${provider}`);
        assert.equal(response.headers.get('x-inferbridge-attempts'), `${provider}=200`);
      }
      const resumed = stats.resumed.slice(first);
      assert.equal(resumed.length, 3);
      if (version === 'TLS 1.3') {
        assert.equal(resumed.filter(Boolean).length, 2, `${resumed}`);
      } else {
        assert.deepEqual(resumed.slice(1), [true, true]);  // the first may be the pool's first
      }
    });
  }
});
