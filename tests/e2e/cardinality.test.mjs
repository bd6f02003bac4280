// Label cardinality is bounded by construction (issue 16): no label value comes from a user.
// 1,000 requests naming models, tiers and providers that do not exist add no series to /metrics;
// neither do unknown models of a known provider, once that provider's direct route has a series.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { api, sdk, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

let stack;
let user;
before(async () => {
  stack = await startStack();
  user = await userWithKeys(stack.gw, ['openai']);
});
after(async () => { await stack?.stop(); });

/// The series of an exposition (sample lines without their values). `process_*` values move
/// but their series do not, so they stay in.
async function seriesSet() {
  const r = await api(stack.gw, 'GET', '/metrics');
  assert.equal(r.status, 200);
  return new Set(r.text.split('\n').filter((l) => l && !l.startsWith('#'))
    .map((l) => l.slice(0, l.lastIndexOf(' '))));
}

async function countOf(seriesName) {
  const r = await api(stack.gw, 'GET', '/metrics');
  const line = r.text.split('\n').find((l) => l.startsWith(`${seriesName} `));
  return line ? Number(line.slice(seriesName.length + 1)) : 0;
}

const rnd = () => crypto.randomBytes(6).toString('hex');

/// Sends `models` as chat requests (fetch, `parallel` at a time); returns the statuses.
async function sendAll(models, parallel = 16) {
  const statuses = [];
  for (let i = 0; i < models.length; i += parallel) {
    const batch = models.slice(i, i + parallel).map(async (model) => {
      const r = await api(stack.gw, 'POST', '/v1/chat/completions', {
        key: user.api_key,
        body: { model, messages: userMessage() },
      });
      return r.status;
    });
    statuses.push(...await Promise.all(batch));
  }
  return statuses;
}

test('1,000 requests for unknown models, tiers and providers add no series', async () => {
  // Every family's series that an answered request mints exist before the baseline.
  const client = sdk(stack.gw, user.api_key);
  await client.chat.completions.create({ model: 'ib/balanced', messages: userMessage() });
  await client.chat.completions.create({ model: 'openai/warm-up', messages: userMessage() });
  const direct = 'inferbridge_requests_total{code="200",provider="openai",tier="direct"}';
  await waitUntil(async () => (await countOf(direct)) === 1, { what: 'the warm-up request counted' });
  const before = await seriesSet();

  const unknown = [];
  for (let i = 0; i < 1000; ++i) {
    switch (i % 4) {
      case 0: unknown.push(`gpt-${rnd()}`); break;  // a model name that is no route
      case 1: unknown.push(`ib/${rnd()}`); break;  // an unknown tier
      case 2: unknown.push(`${rnd()}/gpt-4o`); break;  // an unknown provider prefix
      default: unknown.push(`${rnd()}/${rnd()}/${rnd()}`); break;
    }
  }
  const statuses = await sendAll(unknown);
  assert.deepEqual([...new Set(statuses)], [404], 'unknown routes are answered 404');
  // Unknown models of a known provider are served, under fixed labels (tier "direct").
  const knownProvider = Array.from({ length: 50 }, () => `openai/${rnd()}-${rnd()}`);
  const served = await sendAll(knownProvider);
  assert.deepEqual([...new Set(served)], [200]);
  await waitUntil(async () => (await countOf(direct)) === 51, { what: 'every direct request counted' });

  const afterSet = await seriesSet();
  const added = [...afterSet].filter((s) => !before.has(s));
  const removed = [...before].filter((s) => !afterSet.has(s));
  assert.deepEqual(added, [], 'series added by unknown names');
  assert.deepEqual(removed, []);
  // And no label carries a name the requests made up.
  const text = (await api(stack.gw, 'GET', '/metrics')).text;
  const made = [...unknown, ...knownProvider].flatMap((m) => m.match(/[0-9a-f]{12}/g));
  assert.equal(made.length, 250 * 6 + 50 * 2);
  assert.deepEqual(made.filter((part) => text.includes(part)), [], 'made-up names in /metrics');
});
