// Upstream keep-alive (issue 12): a pooled connection the upstream closes as the gateway reuses
// it must not fail the request. The mock behaves like a Node upstream (`Keep-Alive: timeout=N`,
// idle connections closed), and also closes idle connections at random moments and just as a
// request arrives (seeded), so the race with reuse really happens under steady load.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { mockProviderEnv, sdk, startGateway, userWithKeys, userMessage } from './lib/stack.mjs';
import { startMock, stopProcess, waitUntil } from './lib/procs.mjs';

const REQUESTS = 300;
const CONCURRENCY = 8;

// Models of our own (the default lists change), and breakers kept out of the way: a failure must
// show as a failed request, not as an open circuit.
const MODEL = 'openai/gpt-ka-test';
const config = {
  providers: {
    openai: { models: ['gpt-ka-test'] }, sarvam: { models: ['sarvam-ka-test'] },
    anthropic: {}, groq: {}, deepseek: {}, together: {},
  },
  tiers: {
    'ib/ka': [{ provider: 'openai', model: 'gpt-ka-test' }, { provider: 'sarvam', model: 'sarvam-ka-test' }],
  },
  breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 },
};

let mock;
const gateways = [];

before(async () => {
  mock = await startMock([
    '--keepalive-timeout', '1000', // `Keep-Alive: timeout=1`; idle connections closed after 1 s
    '--idle-close-jitter', '25', // and each idle period ends at a random moment below 25 ms
    '--race-close', '0.15', // and 15% of reuses find the connection closed as the request lands
    '--seed', '12',
  ]);
});
after(async () => {
  for (const gw of gateways) await stopProcess(gw);
  await stopProcess(mock);
});

async function gateway() {
  const gw = await startGateway({ env: mockProviderEnv(mock), config });
  gateways.push(gw);
  return gw;
}

/// A control call to `m` on a connection of its own: the mock's idle closes must not hit the test
/// itself (a connection's first request is never closed).
function controlOf(m, method, pathname, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${m.url}${pathname}`, {
      method, agent: false, headers: { 'content-type': 'application/json', connection: 'close' },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${pathname}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const control = (method, pathname, body) => controlOf(mock, method, pathname, body);
const stats = () => control('GET', '/__mock/stats');

/// Runs `n` chat requests, `concurrency` at a time; resolves to {failures, attempts}.
async function load(client, n, concurrency) {
  const failures = [];
  const attempts = new Map();
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const stream = i % 3 === 2;
      try {
        const { data, response } = await client.chat.completions
          .create({ model: MODEL, messages: userMessage(`request ${i}`), stream })
          .withResponse();
        let text = '';
        if (stream) {
          for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? '';
        } else {
          text = data.choices[0].message.content;
        }
        assert.match(text, /Hello from mock openai/);
        const a = response.headers.get('x-inferbridge-attempts');
        attempts.set(a, (attempts.get(a) ?? 0) + 1);
      } catch (err) {
        failures.push(`${i}: ${err.status ?? ''} ${err.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { failures, attempts };
}

test('steady load against an upstream closing idle connections at random moments: no failures',
  { timeout: 120000 }, async () => {
    const gw = await gateway();
    const u = await userWithKeys(gw, ['openai']);
    await control('POST', '/__mock/reset', {});
    const { failures, attempts } = await load(sdk(gw, u.api_key), REQUESTS, CONCURRENCY);
    const s = await stats();
    console.log(`# ${REQUESTS} requests: ${failures.length} failed; attempts ${JSON.stringify([...attempts])};`
      + ` mock ${JSON.stringify(s.connections)}, ${s.requests.openai} answered`);
    assert.deepEqual(failures, []);
    assert.deepEqual([...attempts], [['openai=200', REQUESTS]], 'no attempt shows reset');
    // The races really happened, and each request reached the upstream exactly once: a request
    // closed on unread was never seen by it.
    assert.ok(s.connections.race_closed > 0, 'some reuses raced a close');
    assert.ok(s.connections.idle_closed > 0, 'some idle connections were closed');
    assert.equal(s.requests.openai, REQUESTS);
  });

test('Keep-Alive: timeout=0 is honoured: such connections are never reused', async () => {
  const m = await startMock(['--keepalive-timeout', '500']); // Node sends `timeout=0` for 500 ms
  const gw = await startGateway({ env: mockProviderEnv(m), config });
  gateways.push(gw, m);
  const u = await userWithKeys(gw, ['openai']);
  const client = sdk(gw, u.api_key);
  const accepted = async () => (await controlOf(m, 'GET', '/__mock/stats')).connections.accepted;
  const before = await accepted();
  for (let i = 0; i < 5; ++i) {
    const { response } = await client.chat.completions
      .create({ model: MODEL, messages: userMessage() }).withResponse();
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
  }
  // Five chat requests on five connections, plus this stats call's own connection.
  assert.equal(await accepted() - before, 6);
});

test('a fresh connection that fails is still the provider\'s failure: it falls back', async () => {
  const gw = await gateway(); // a new gateway: no pooled connection to the mock
  const u = await userWithKeys(gw, ['openai', 'sarvam']);
  await control('POST', '/__mock/reset', {});
  await control('POST', '/__mock/script', { provider: 'openai', steps: [{ behaviour: 'reset-before' }] });
  const { data, response } = await sdk(gw, u.api_key).chat.completions
    .create({ model: 'ib/ka', messages: userMessage() }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=reset;sarvam=200');
  assert.match(data.choices[0].message.content, /Hello from mock sarvam/);
  const s = await waitUntil(async () => {
    const v = await stats();
    return v.in_flight === 0 && v;
  }, { what: 'mock idle' });
  assert.equal(s.requests.openai, 1, 'the failed request was not re-sent');
});
