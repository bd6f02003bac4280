// Upstream HTTPS: certificates are verified against the trusted store (plus IB_EXTRA_CA_FILE),
// with the host name checked; an untrusted or mismatched certificate is a connection failure that
// falls back. The upstream here is a small HTTPS server with a certificate made at test time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import { mockProviderEnv, sdk, startGateway, startStack, tempDir, userWithKeys, userMessage } from './lib/stack.mjs';
import { stopProcess } from './lib/procs.mjs';

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

test('a trusted certificate for another host name is refused', async () => {
  const port = await startUpstream(makeCert('elsewhere', 'DNS:elsewhere.example'));
  const r = await viaOpenAi({
    IB_OPENAI_BASE_URL: `https://localhost:${port}/v1`,
    IB_EXTRA_CA_FILE: path.join(dir, 'elsewhere.pem'),
  });
  assert.equal(r.attempts, 'openai=connect_error;sarvam=200');
});
