// LMDB map full (issue 18): with a tiny `store.lmdb_map_size_bytes`, writes that need a page the
// map no longer has are answered 507 in the OpenAI envelope; reads and chat keep working, and the
// request records that cannot be written are dropped and counted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  addKey, api, callsTo, mockReset, restartGateway, sdk, signup, startStack, userMessage,
} from './lib/stack.mjs';
import { stopProcess, waitUntil } from './lib/procs.mjs';

const MAP = 1 << 20;  // the smallest the config accepts: 1 MiB
let stack;
before(async () => { stack = await startStack({ config: { store: { lmdb_map_size_bytes: MAP } } }); });
after(async () => { await stack?.stop(); });

function assert507(r, what) {
  assert.equal(r.status, 507, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.type, 'server_error');
  assert.equal(r.json?.error?.code, 'insufficient_storage');
  assert.match(r.json?.error?.message, /storage is full/);
}

async function droppedRecords(gw) {
  const text = (await api(gw, 'GET', '/metrics')).text;
  const m = text.match(/^inferbridge_request_records_dropped_total (\d+)/m);
  return m ? Number(m[1]) : 0;
}

test('a full map answers 507 to sign-ups and key writes; reads and chat still work', async () => {
  const { gw, mock } = stack;
  const first = await signup(gw);
  await addKey(gw, first.api_key, 'openai', 'sk-before-full-openai-00000000');

  // Fill the map: 4 KiB provider keys (each token takes overflow pages), from a few users.
  const big = (i, p) => `sk-${p}-${i}-`.padEnd(4096, 'x');
  let keyFull;
  const owners = [];
  for (let i = 0; i < 100 && !keyFull; ++i) {
    const u = await signup(gw).catch(() => undefined);
    if (!u) break;  // sign-up already refused: the map is that full
    owners.push(u);
    for (const p of ['groq', 'deepseek', 'together', 'anthropic', 'sarvam']) {
      const r = await api(gw, 'POST', '/v1/keys', { key: u.api_key, body: { provider: p, api_key: big(i, p) } });
      if (r.status !== 201) {
        keyFull = r;
        break;
      }
    }
  }
  assert.ok(keyFull, `no key write was refused after ${owners.length} users`);
  assert507(keyFull, 'key write');

  // Sign-ups until 507 (bounded).
  let signupFull;
  let signups = 0;
  for (; signups < 2000 && !signupFull; ++signups) {
    const r = await api(gw, 'POST', '/v1/users', { body: { email: `full-${signups}-${Date.now()}@example.com` } });
    if (r.status !== 201) signupFull = r;
  }
  assert.ok(signupFull, 'sign-ups were never refused');
  assert507(signupFull, 'sign-up');

  // Reads and chat still work.
  const keys = await api(gw, 'GET', '/v1/keys', { key: first.api_key });
  assert.equal(keys.status, 200);
  assert.deepEqual(keys.json.data.map((k) => k.provider), ['openai']);
  await mockReset(mock);
  const reply = await sdk(gw, first.api_key).chat.completions.create({ model: 'openai/gpt-4o-mini', messages: userMessage() });
  assert.ok(reply.choices[0].message.content);
  assert.deepEqual((await callsTo(mock, 'openai')).map((c) => c.headers.authorization),
    ['Bearer sk-before-full-openai-00000000']);
  // Chat goes on while the request log fills what little room is left; then its batches are
  // dropped and counted (not retried forever), and chat still goes on.
  const client = sdk(gw, first.api_key);
  let chats = 1;
  await waitUntil(async () => {
    await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: userMessage() });
    ++chats;
    return (await droppedRecords(gw)) > 0;
  }, { timeoutMs: 60000, what: 'a dropped request-log batch' });
  await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: userMessage() });
  const history = await api(gw, 'GET', '/v1/requests', { key: first.api_key });
  assert.equal(history.status, 200);
  assert.ok(history.json.data.length < chats + 1, `${history.json.data.length} records for ${chats + 1} chats`);
  assert.equal((await api(gw, 'GET', '/healthz')).status, 200);

  // Raising the map size (restart) makes room again.
  await stopProcess(gw);
  const bigger = await restartGateway({
    ...gw, args: [], env: { ...gw.env, IB_CONFIG: '' },
  });
  try {
    const after = await api(bigger, 'POST', '/v1/users', { body: { email: `after-${Date.now()}@example.com` } });
    assert.equal(after.status, 201, after.text);
    assert.equal((await api(bigger, 'GET', '/v1/keys', { key: first.api_key })).status, 200);
  } finally {
    await stopProcess(bigger);
  }
});
