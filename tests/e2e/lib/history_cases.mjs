// The request-history scenarios (GET /v1/requests, issue 16), shared by both stores: LMDB
// (request_history.test.mjs) and PostgreSQL (cluster.test.mjs). Paging newest first with `limit`
// and `before`, isolation between users, visibility within a second of the response, retention
// by count and by age (both from the config), and the OpenAI error envelope for a bad `limit`.
import assert from 'node:assert/strict';

import { addKey, api, signup, userMessage } from './stack.mjs';
import { waitUntil } from './procs.mjs';

async function chat(gw, key) {
  const r = await api(gw, 'POST', '/v1/chat/completions', {
    key, body: { model: 'openai/gpt-6-luna', messages: userMessage() },
  });
  assert.equal(r.status, 200, r.text);
  return r.headers.get('x-request-id');
}

async function userWithOpenAi(gw) {
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'openai');
  return u;
}

async function list(gw, key, query = '') {
  const r = await api(gw, 'GET', `/v1/requests${query}`, { key });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'list');
  return r.json;
}

/// Every record of a user, page by page (`limit` each), newest first.
async function allPages(gw, key, limit) {
  const ids = [];
  let query = `?limit=${limit}`;
  for (let pages = 0; ; ++pages) {
    assert.ok(pages < 1000, 'paging does not end');
    const page = await list(gw, key, query);
    assert.ok(page.data.length <= limit);
    ids.push(...page.data.map((r) => r.id));
    if (!page.has_more) return ids;
    assert.equal(page.data.length, limit, 'a page before the last one is full');
    query = `?limit=${limit}&before=${page.data.at(-1).id}`;
  }
}

/// Registers the scenarios with `t` (node:test's `test`, or a wrapper naming the store).
/// `shared()` returns the running stack ({gw}) the plain scenarios share; `makeStack(config)`
/// starts one with `config` merged in and resolves to {gw, stop()} (the retention scenarios).
export function historyCases(t, shared, makeStack) {
  t('paging through 250 records returns each exactly once, newest first', async () => {
    const { gw } = shared();
    const u = await userWithOpenAi(gw);
    const sent = [];
    // One after another, so the order of the answers is the order of the records.
    for (let i = 0; i < 250; ++i) sent.push(await chat(gw, u.api_key));
    const newestFirst = [...sent].reverse();
    await waitUntil(async () => (await list(gw, u.api_key, '?limit=1')).data[0]?.id === sent.at(-1),
      { what: 'the last record' });
    for (const limit of [100, 7, 1]) {
      const ids = await allPages(gw, u.api_key, limit);
      assert.equal(new Set(ids).size, ids.length, `limit ${limit}: a record twice`);
      assert.deepEqual(ids, newestFirst, `limit ${limit}`);
    }
    // The default page is 20, with has_more.
    const first = await list(gw, u.api_key);
    assert.equal(first.data.length, 20);
    assert.equal(first.has_more, true);
    // `created` never increases down the list.
    const page = await list(gw, u.api_key, '?limit=100');
    for (let i = 1; i < page.data.length; ++i) {
      assert.ok(page.data[i - 1].created >= page.data[i].created);
    }
    // The last page says there is nothing more.
    const last = await list(gw, u.api_key, `?limit=100&before=${sent[0]}`);
    assert.deepEqual(last, { object: 'list', data: [], has_more: false });
  });

  t('user B never sees user A\'s records', async () => {
    const { gw } = shared();
    const a = await userWithOpenAi(gw);
    const b = await userWithOpenAi(gw);
    const aIds = [await chat(gw, a.api_key), await chat(gw, a.api_key)];
    const bId = await chat(gw, b.api_key);
    await waitUntil(async () => (await list(gw, a.api_key)).data.length === 2
      && (await list(gw, b.api_key)).data.length === 1, { what: 'both users\' records' });
    assert.deepEqual((await list(gw, a.api_key)).data.map((r) => r.id), [...aIds].reverse());
    assert.deepEqual((await list(gw, b.api_key)).data.map((r) => r.id), [bId]);
    // A's request id as B's cursor names nothing of B's: 400, not A's older records.
    const cross = await api(gw, 'GET', `/v1/requests?before=${aIds[1]}`, { key: b.api_key });
    assert.equal(cross.status, 400, cross.text);
    assert.equal(cross.json.error.param, 'before');
    assert.ok(!cross.text.includes(aIds[0]));
    // Without a key: 401, nothing listed.
    const anon = await api(gw, 'GET', '/v1/requests');
    assert.equal(anon.status, 401);
    assert.equal(anon.json.data, undefined);
  });

  t('a record is visible within a second of its response', async () => {
    const { gw } = shared();
    const u = await userWithOpenAi(gw);
    for (let i = 0; i < 5; ++i) {
      const id = await chat(gw, u.api_key);
      const answered = Date.now();
      await waitUntil(async () => (await list(gw, u.api_key, '?limit=1')).data[0]?.id === id,
        { timeoutMs: 1000, intervalMs: 5, what: `record ${id} within a second` });
      assert.ok(Date.now() - answered <= 1100);
    }
  });

  t('an invalid limit is a 400 in the OpenAI envelope', async () => {
    const { gw } = shared();
    const u = await userWithOpenAi(gw);
    for (const limit of ['0', '101', '-1', 'abc', '1.5', '', '1e2']) {
      const r = await api(gw, 'GET', `/v1/requests?limit=${encodeURIComponent(limit)}`, { key: u.api_key });
      if (limit === '') {
        assert.equal(r.status, 200, 'an empty limit is the default');
        continue;
      }
      assert.equal(r.status, 400, `limit=${limit}: ${r.text}`);
      assert.equal(r.json.error.type, 'invalid_request_error', r.text);
      assert.equal(r.json.error.param, 'limit', r.text);
      assert.equal(typeof r.json.error.message, 'string');
      assert.ok('code' in r.json.error, r.text);
    }
    for (const limit of ['1', '100']) {
      const r = await api(gw, 'GET', `/v1/requests?limit=${limit}`, { key: u.api_key });
      assert.equal(r.status, 200, `limit=${limit}: ${r.text}`);
    }
  });

  t('retention keeps a user\'s newest max_records_per_user records', async () => {
    const own = await makeStack({ request_log: { max_records_per_user: 5 } });
    try {
      const { gw } = own;
      const u = await userWithOpenAi(gw);
      const other = await userWithOpenAi(gw);
      const otherId = await chat(gw, other.api_key);
      const sent = [];
      for (let i = 0; i < 12; ++i) sent.push(await chat(gw, u.api_key));
      const newest = sent.slice(-5).reverse();
      await waitUntil(async () => {
        const page = await list(gw, u.api_key, '?limit=100');
        return JSON.stringify(page.data.map((r) => r.id)) === JSON.stringify(newest);
      }, { what: 'only the newest 5 records' });
      assert.equal((await list(gw, u.api_key, '?limit=100')).has_more, false);
      // Another user's records are their own to count.
      assert.deepEqual((await list(gw, other.api_key)).data.map((r) => r.id), [otherId]);
    } finally {
      await own.stop();
    }
  });

  t('retention drops records older than max_age_s', async () => {
    const own = await makeStack({ request_log: { max_age_s: 1 } });
    try {
      const { gw } = own;
      const u = await userWithOpenAi(gw);
      const old = [await chat(gw, u.api_key), await chat(gw, u.api_key)];
      await waitUntil(async () => (await list(gw, u.api_key)).data.length === 2, { what: 'the records' });
      // Age is enforced when records are written: keep writing (bounded) until the old ones go.
      let latest;
      await waitUntil(async () => {
        latest = await chat(gw, u.api_key);
        const ids = (await list(gw, u.api_key, '?limit=100')).data.map((r) => r.id);
        return ids.includes(latest) && !old.some((id) => ids.includes(id));
      }, { timeoutMs: 10000, intervalMs: 200, what: 'records older than a second to go' });
    } finally {
      await own.stop();
    }
  });
}
