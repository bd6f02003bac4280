// Several nodes, one PostgreSQL (issue 14): three real gateways on loopback sharing one real
// PostgreSQL 15 and one mock provider behave as one gateway. One cluster for the file, a fresh
// database (owned by an ordinary role) for each test, every node with its own data dir and the
// same master key.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { buildDir, startMock, stopProcess, waitUntil } from './lib/procs.mjs';
import { historyCases } from './lib/history_cases.mjs';
import { startPostgres } from './lib/pg.mjs';
import {
  addKey, api, mockProviderEnv, mockReset, mockScript, mockStats, sdk, signup, startGateway, tempDir,
  userMessage,
} from './lib/stack.mjs';

const COOLDOWN_MS = 1500;
const MAX_COOLDOWN_MS = 20000;
const TIER = 't/pair';
const PRIMARY = 'groq';
const FALLBACK = 'sarvam';
const DIRECT = 'openai/gpt-4.1-mini';

const CONFIG = {
  tiers: {
    [TIER]: [{ provider: PRIMARY, model: 'llama-3.1-8b-instant' }, { provider: FALLBACK, model: 'sarvam-30b' }],
  },
  breaker: {
    consecutive_failures: 2, window: 20, window_ms: 30000, failure_ratio: 0.5, min_requests: 10,
    cooldown_ms: COOLDOWN_MS, max_cooldown_ms: MAX_COOLDOWN_MS,
  },
};

/// A Fernet key: 32 random bytes, url-safe base64 with its padding.
const fernetKey = () => crypto.randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
const MASTER_KEY = fernetKey();

let pg;
let mock;
let nodes = [];
let dbCounter = 0;
let history;  // the PostgreSQL node the request-history scenarios share

before(async () => {
  [pg, mock] = await Promise.all([startPostgres(), startMock()]);
});
after(async () => {
  if (history) await history.stop();
  await stopProcess(mock);
  await pg?.destroy();
});
afterEach(async () => {
  const stopping = nodes;
  nodes = [];
  await Promise.all(stopping.map((n) => stopProcess(n)));
  await mockReset(mock);  // no script left over for the next test
});

/// A fresh database for the calling test; resolves to its URL.
const freshDatabase = () => pg.createDatabase(`ib_test_${process.pid}_${++dbCounter}`);

/// A gateway on `url` (PostgreSQL) or, with `url` null, on LMDB in its data dir.
async function startNode(url, { env = {}, config = CONFIG, dataDir } = {}) {
  const gw = await startGateway({
    env: {
      ...mockProviderEnv(mock),
      IB_MASTER_KEY: MASTER_KEY,
      ...(url ? { IB_DATABASE_URL: url } : {}),
      ...env,
    },
    config,
    dataDir,
  });
  nodes.push(gw);
  return gw;
}

const startNodes = (n, url, opts) => Promise.all(Array.from({ length: n }, () => startNode(url, opts)));

/// One chat through the official SDK; resolves to {status, attempts, code} whether it succeeded
/// or failed with an HTTP status (a connection failure still rejects).
async function chat(gw, key, model = DIRECT) {
  try {
    const { response } = await sdk(gw, key).chat.completions.create({ model, messages: userMessage() }).withResponse();
    return { status: response.status, attempts: response.headers.get('x-inferbridge-attempts') };
  } catch (e) {
    if (typeof e.status !== 'number') throw e;
    return { status: e.status, attempts: e.headers?.get?.('x-inferbridge-attempts') ?? null, code: e.code };
  }
}

/// A chat through plain fetch (the load loops: cheaper than the SDK).
async function quickChat(gw, key, model = TIER) {
  const r = await api(gw, 'POST', '/v1/chat/completions', { key, body: { model, messages: userMessage() } });
  return { status: r.status, attempts: r.headers.get('x-inferbridge-attempts') };
}

/// Requests the mock received for `provider` since its last reset (a counter: the request log
/// keeps only the latest ones, too few under load).
const received = async (provider) => (await mockStats(mock)).requests[provider];

const readyz = async (gw) => (await api(gw, 'GET', '/readyz')).json;

/// Retries `f` until it resolves to a truthy value; resolves to {value, ms}.
async function timed(f, opts) {
  const t0 = Date.now();
  const value = await waitUntil(f, opts);
  return { value, ms: Date.now() - t0 };
}

/// Waits until every node can chat as `key` through `model` (the user and key reached its snapshot).
async function untilAllChat(gws, key, model = DIRECT, timeoutMs = 2000) {
  for (const gw of gws) {
    await waitUntil(async () => (await quickChat(gw, key, model)).status === 200,
      { timeoutMs, what: `a chat through ${gw.url}` });
  }
}

const sha256hex = (s) => crypto.createHash('sha256').update(s).digest('hex');
const rows = (out) => out.split('\n').filter((l) => l !== '');

// -------------------------------------------------------------------------------------------------

test('sign up on A, key on B, chat through C; the key deleted on C is refused on A', async (t) => {
  const url = await freshDatabase();
  const [a, b, c] = await startNodes(3, url);
  // libpq is loaded on first use (storage/pg.cpp): a node on PostgreSQL has it mapped.
  assert.match(fs.readFileSync(`/proc/${a.proc.pid}/maps`, 'utf8'), /\/libpq\.so\.5/);
  const u = await signup(a);
  // B learns of the user through the database; until then it answers 401.
  const put = await timed(async () => {
    const r = await api(b, 'POST', '/v1/keys', { key: u.api_key, body: { provider: 'openai', api_key: 'sk-cluster-0123456789abcdef' } });
    if (r.status === 401) return false;
    assert.equal(r.status, 201, r.text);
    return true;
  }, { timeoutMs: 2000, what: 'node B to know the user signed up on A' });
  t.diagnostic(`user visible on B after ${put.ms} ms`);
  const seen = await timed(async () => {
    const r = await chat(c, u.api_key);
    if (r.status === 401 || r.status === 424) return false;
    assert.equal(r.status, 200, JSON.stringify(r));
    return r;
  }, { timeoutMs: 2000, what: 'node C to chat with the key registered on B' });
  t.diagnostic(`key usable on C ${seen.ms} ms after its 201 on B`);
  assert.ok(seen.ms <= 1000, `the key became usable on C only after ${seen.ms} ms`);
  // A uses it too, so that the refusal below is a change A learned about.
  await waitUntil(async () => (await chat(a, u.api_key)).status === 200, { timeoutMs: 2000, what: 'node A to chat' });

  const del = await api(c, 'DELETE', '/v1/keys/openai', { key: u.api_key });
  assert.equal(del.status, 204, del.text);
  const gone = await timed(async () => {
    const r = await chat(a, u.api_key);
    if (r.status === 200) return false;
    assert.equal(r.status, 424, JSON.stringify(r));
    return true;
  }, { timeoutMs: 2000, what: 'node A to refuse the key deleted on C' });
  t.diagnostic(`deletion effective on A after ${gone.ms} ms`);
  assert.ok(gone.ms <= 1000, `A refused the deleted key only after ${gone.ms} ms`);
});

/// `count` nodes on a fresh database and a user with keys for the tier's two providers, usable on
/// every node; then the primary's breaker is opened behind the first node (the mock answers it
/// 500 from then on). Resolves to {u, openedAt (a lower bound of the opening), gws}.
async function openBreakerBehind(count) {
  const url = await freshDatabase();
  const gws = await startNodes(count, url);
  const [a] = gws;
  const u = await signup(a);
  await addKey(a, u.api_key, PRIMARY);
  await addKey(a, u.api_key, FALLBACK);
  await untilAllChat(gws, u.api_key, TIER);
  for (const gw of gws) assert.equal((await quickChat(gw, u.api_key)).attempts, `${PRIMARY}=200`);
  await mockReset(mock);
  await mockScript(mock, PRIMARY, Array(50).fill({ status: 500 }));
  let openedAt = 0;
  for (let i = 0; i < CONFIG.breaker.consecutive_failures; ++i) {
    // The breaker opens during the last request: the time it was sent is a lower bound.
    openedAt = Date.now();
    const r = await quickChat(a, u.api_key);
    assert.equal(r.status, 200);
    assert.equal(r.attempts, `${PRIMARY}=500;${FALLBACK}=200`);
  }
  assert.equal((await readyz(a)).providers[PRIMARY], 'open');
  return { u, openedAt, gws };
}

test('a breaker opened behind node A is open on node B: B skips the provider without a request', async (t) => {
  const { u, gws: [, b] } = await openBreakerBehind(2);
  const before = await received(PRIMARY);
  assert.equal(before, CONFIG.breaker.consecutive_failures);
  const seen = await timed(async () => (await readyz(b)).providers[PRIMARY] === 'open',
    { timeoutMs: 1000, what: `node B to see ${PRIMARY} open` });
  t.diagnostic(`breaker open on B ${seen.ms} ms after it opened on A`);
  for (let i = 0; i < 5; ++i) {
    const r = await quickChat(b, u.api_key);
    assert.equal(r.status, 200);
    assert.equal(r.attempts, `${PRIMARY}=circuit_open;${FALLBACK}=200`);
  }
  assert.equal(await received(PRIMARY), before, `node B sent requests to ${PRIMARY}`);
});

test('after the cooldown, three nodes under load send exactly one probe in total', async (t) => {
  const { u, openedAt, gws } = await openBreakerBehind(3);
  for (const gw of gws) {
    await waitUntil(async () => (await readyz(gw)).providers[PRIMARY] === 'open',
      { timeoutMs: 1000, what: `${gw.url} to see ${PRIMARY} open` });
  }
  const before = await received(PRIMARY);
  // The load spans the end of the cooldown. The probe fails (the mock still answers 500), which
  // doubles the cooldown: no second probe may come before probe + 2 * COOLDOWN_MS, so a window
  // ending COOLDOWN_MS + 1500 ms after the opening (at the earliest probe + 1500) sees one probe.
  const start = openedAt + COOLDOWN_MS - 300;
  const end = openedAt + COOLDOWN_MS + 1500;
  await waitUntil(() => Date.now() >= start, { timeoutMs: COOLDOWN_MS + 1000, intervalMs: 5, what: 'the load to start' });
  const tokens = [];
  const loop = async (gw) => {
    while (Date.now() < end) {
      const r = await quickChat(gw, u.api_key);
      assert.equal(r.status, 200, JSON.stringify(r));
      tokens.push(r.attempts);
    }
  };
  await Promise.all(gws.flatMap((gw) => Array.from({ length: 8 }, () => loop(gw))));
  const probes = await received(PRIMARY) - before;
  const failedProbes = tokens.filter((x) => x === `${PRIMARY}=500;${FALLBACK}=200`).length;
  const skipped = tokens.filter((x) => x === `${PRIMARY}=circuit_open;${FALLBACK}=200`).length;
  t.diagnostic(`${tokens.length} requests through 3 nodes; ${probes} probe(s) at the mock`);
  assert.equal(probes, 1, `${probes} probes reached ${PRIMARY}`);
  assert.equal(failedProbes, 1);
  assert.equal(skipped, tokens.length - 1, [...new Set(tokens)].join(' | '));
  // The failed probe re-opened the breaker everywhere.
  for (const gw of gws) assert.equal((await readyz(gw)).providers[PRIMARY], 'open');
});

test('PostgreSQL stopped: known users chat on every node, writes answer 503; started again: writes work', async (t) => {
  const url = await freshDatabase();
  const gws = await startNodes(3, url);
  const [a, b, c] = gws;
  const u = await signup(a);
  await addKey(a, u.api_key, 'openai');
  await untilAllChat(gws, u.api_key);
  let down = false;
  try {
    const stopping = Date.now();
    await pg.stop();
    down = true;
    t.diagnostic(`PostgreSQL stopped in ${Date.now() - stopping} ms`);
    const whileDown = [];
    for (const gw of gws) {
      const { data, response } = await sdk(gw, u.api_key).chat.completions
        .create({ model: DIRECT, messages: userMessage() }).withResponse();
      assert.ok(data.choices.length > 0, `a known user could not chat on ${gw.url} with the store down`);
      whileDown.push(response.headers.get('x-request-id'));
    }
    const lostEmail = `lost-${process.pid}-${Date.now()}@example.com`;
    const t0 = Date.now();
    const s = await api(a, 'POST', '/v1/users', { body: { email: lostEmail } });
    const ms = Date.now() - t0;
    t.diagnostic(`sign-up with the store down answered ${s.status} in ${ms} ms`);
    assert.equal(s.status, 503, s.text);
    assert.ok(ms < 5000, `sign-up took ${ms} ms to fail`);
    assert.equal(s.json?.error?.code, 'store_unavailable', s.text);
    assert.equal(typeof s.json.error.message, 'string');
    assert.ok(Number(s.headers.get('retry-after')) >= 1, `retry-after: ${s.headers.get('retry-after')}`);
    const k = await api(b, 'POST', '/v1/keys', { key: u.api_key, body: { provider: 'anthropic', api_key: 'sk-ant-lost-0123456789' } });
    assert.equal(k.status, 503, k.text);
    assert.equal(k.json?.error?.code, 'store_unavailable', k.text);
    assert.ok(k.headers.get('retry-after'));
    const d = await api(b, 'DELETE', '/v1/keys/openai', { key: u.api_key });
    assert.equal(d.status, 503, d.text);
    const reported = await timed(async () => {
      for (const gw of gws) {
        if ((await readyz(gw)).store !== 'unavailable') return false;
      }
      return true;
    }, { timeoutMs: 5000, intervalMs: 50, what: 'every /readyz to report the store unavailable' });
    t.diagnostic(`every /readyz said "unavailable" ${reported.ms} ms after the write checks`);
    const metrics = (await api(a, 'GET', '/metrics')).text;
    assert.match(metrics, /^inferbridge_store_up\{kind="postgres"\} 0$/m);

    await pg.start();
    down = false;
    const back = await timed(async () => {
      const r = await api(a, 'POST', '/v1/users', { body: { email: `back-${process.pid}-${Date.now()}@example.com` } });
      return r.status === 201;
    }, { timeoutMs: 20000, intervalMs: 100, what: 'sign-up to work again after PostgreSQL restarted' });
    t.diagnostic(`sign-up worked again ${back.ms} ms after PostgreSQL restarted`);
    await waitUntil(async () => {
      const r = await api(b, 'POST', '/v1/keys', { key: u.api_key, body: { provider: 'deepseek', api_key: 'sk-ds-back-0123456789' } });
      return r.status === 201;
    }, { timeoutMs: 20000, intervalMs: 100, what: 'key writes to work again on B' });
    for (const gw of gws) {
      await waitUntil(async () => (await readyz(gw)).store === 'open',
        { timeoutMs: 20000, intervalMs: 100, what: `${gw.url} /readyz to report the store open` });
    }
    assert.match((await api(a, 'GET', '/metrics')).text, /^inferbridge_store_up\{kind="postgres"\} 1$/m);
    // The records of the chats made while it was down were kept and written once it was back.
    await waitUntil(async () => {
      const r = await api(c, 'GET', '/v1/requests?limit=100', { key: u.api_key });
      if (r.status !== 200) return false;
      const ids = new Set(r.json.data.map((x) => x.id));
      return whileDown.every((id) => ids.has(id));
    }, { timeoutMs: 10000, intervalMs: 100, what: 'the records of the chats made with the store down' });
    // The writes answered 503 never took effect.
    assert.equal((await pg.psql(url, `SELECT count(*) FROM users WHERE email = '${lostEmail}'`)).trim(), '0');
    assert.equal((await pg.psql(url, `SELECT provider FROM provider_keys WHERE user_id = '${u.id}' ORDER BY provider`)).trim(),
      'deepseek\nopenai');
  } finally {
    if (down) await pg.start();
  }
});

test('kill -9 of a node during a storm of sign-ups and key writes: every acknowledged write is there', async (t) => {
  const url = await freshDatabase();
  const [a, b] = await startNodes(2, url);
  const users = [];  // {id, api_key, node}
  const keys = [];   // {user, provider}
  let killed = false;
  let stop = false;
  let afterKill = 0;
  let onB = 0;
  const worker = async (gw, n) => {
    for (let i = 0; !stop; ++i) {
      try {
        const s = await api(gw, 'POST', '/v1/users', { body: { email: `storm-${n}-${i}-${Date.now()}@example.com` } });
        if (s.status !== 201) throw new Error(`sign-up: ${s.status} ${s.text}`);
        users.push({ ...s.json, node: gw });
        if (gw === b) ++onB;
        if (killed && gw === a) ++afterKill;
        for (const provider of ['openai', 'groq']) {
          const k = await api(gw, 'POST', '/v1/keys', { key: s.json.api_key, body: { provider, api_key: `sk-storm-${provider}-0123456789` } });
          if (k.status !== 201) throw new Error(`key write: ${k.status} ${k.text}`);
          keys.push({ user: s.json.id, provider });
          if (gw === b) ++onB;
        }
      } catch (e) {
        if (gw === b && killed) return;  // the killed node: writes in flight have no answer
        throw e;
      }
    }
  };
  const storm = [a, b].flatMap((gw, g) => Array.from({ length: 4 }, (_, w) => worker(gw, `${g}-${w}`)));
  const stormDone = Promise.allSettled(storm);
  try {
    await waitUntil(() => onB >= 60, { timeoutMs: 15000, what: 'writes through node B' });
    b.proc.stopping = true;  // an expected death: procs.mjs prints none of its stderr
    b.proc.kill('SIGKILL');
    killed = true;
    nodes = nodes.filter((n) => n !== b);
    await waitUntil(() => afterKill >= 20, { timeoutMs: 15000, what: 'writes through node A after the kill' });
  } finally {
    stop = true;
  }
  const settled = await stormDone;
  const failed = settled.filter((s) => s.status === 'rejected');
  assert.equal(failed.length, 0, failed.map((f) => f.reason?.message).join('\n'));
  t.diagnostic(`${users.length} sign-ups and ${keys.length} key writes acknowledged, ${onB} writes through the killed node`);

  // Directly in the database.
  const ids = new Set(rows(await pg.psql(url, 'SELECT id FROM users')));
  const hashes = new Set(rows(await pg.psql(url, 'SELECT key_hash FROM api_keys')));
  const stored = new Set(rows(await pg.psql(url, `SELECT user_id || ':' || provider FROM provider_keys`)));
  for (const u of users) {
    assert.ok(ids.has(u.id), `user ${u.id} acknowledged but missing`);
    assert.ok(hashes.has(sha256hex(u.api_key)), `gateway key of ${u.id} acknowledged but missing`);
  }
  for (const k of keys) assert.ok(stored.has(`${k.user}:${k.provider}`), `key ${k.user}:${k.provider} acknowledged but missing`);

  // Through the surviving node (it learns B's last writes through the database).
  const want = new Map(users.map((u) => [u.api_key, keys.filter((k) => k.user === u.id).map((k) => k.provider).sort()]));
  for (const [apiKey, providers] of want) {
    await waitUntil(async () => {
      const r = await api(a, 'GET', '/v1/keys', { key: apiKey });
      if (r.status !== 200) return false;
      // Every acknowledged key; a write in flight when B died may have committed unanswered.
      const listed = new Set(r.json.data.map((k) => k.provider));
      return providers.every((p) => listed.has(p));
    }, { timeoutMs: 3000, what: 'node A to list every acknowledged key' });
  }
});

/// Runs `inferbridge migrate-store --to url` with `env`; resolves to {code, stdout, stderr}.
function migrateStore(url, env) {
  return new Promise((resolve) => {
    execFile(path.join(buildDir, 'inferbridge'), ['migrate-store', '--to', url], {
      env: { ...process.env, ...env }, timeout: 30000, killSignal: 'SIGKILL',
    }, (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }));
  });
}

const COPIED = /copied (\d+) users, (\d+) api keys, (\d+) provider keys/;

test('migrate-store: a user created on LMDB chats through a PostgreSQL node; a second run changes nothing', async () => {
  const url = await freshDatabase();
  const dataDir = path.join(tempDir(), 'data');
  const lmdb = await startNode(null, { dataDir });
  const u = await signup(lmdb);
  await addKey(lmdb, u.api_key, 'openai');
  assert.equal((await chat(lmdb, u.api_key)).status, 200);
  nodes = nodes.filter((n) => n !== lmdb);
  await stopProcess(lmdb);

  const env = { IB_DATA_DIR: dataDir, IB_MASTER_KEY: MASTER_KEY };
  const counts = async () => (await pg.psql(url,
    'SELECT (SELECT count(*) FROM users) || \',\' || (SELECT count(*) FROM api_keys) || \',\' || (SELECT count(*) FROM provider_keys)')).trim();
  const first = await migrateStore(url, env);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(first.stdout.match(COPIED)?.slice(1).map(Number), [1, 1, 1], first.stdout);
  const afterFirst = await counts();
  assert.equal(afterFirst, '1,1,1');
  const second = await migrateStore(url, env);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(second.stdout.match(COPIED)?.slice(1).map(Number), [0, 0, 0], second.stdout);
  assert.equal(await counts(), afterFirst);

  const node = await startNode(url);
  const r = await chat(node, u.api_key);
  assert.equal(r.status, 200, JSON.stringify(r));
  const list = await api(node, 'GET', '/v1/keys', { key: u.api_key });
  assert.deepEqual(list.json.data.map((k) => k.provider), ['openai']);
});

test('the gateway runs as an ordinary role, not a superuser, and owns its tables', async () => {
  const url = await freshDatabase();
  await startNode(url);
  assert.equal((await pg.psql(url, 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).trim(), 'f');
  assert.equal((await pg.psql(url, "SELECT tableowner FROM pg_tables WHERE tablename = 'users'")).trim(), pg.role);
});

test('two nodes starting together on an empty database both come up (migrations under a lock)', async () => {
  const url = await freshDatabase();
  const [a, b] = await startNodes(2, url);
  for (const gw of [a, b]) assert.equal((await readyz(gw)).store, 'open');
  assert.equal((await pg.psql(url, 'SELECT count(*) - count(DISTINCT version) FROM schema_migrations')).trim(), '0');
  // Both serve the same users.
  const u = await signup(b);
  await waitUntil(async () => {
    const r = await api(a, 'POST', '/v1/keys', { key: u.api_key, body: { provider: 'openai', api_key: 'sk-two-0123456789abcdef' } });
    return r.status === 201;
  }, { timeoutMs: 2000, what: 'node A to accept a key for the user signed up on B' });
  await untilAllChat([a, b], u.api_key);
});

test('PostgreSQL mode without a master key refuses to start', async () => {
  const url = await freshDatabase();
  const saved = process.env.IB_MASTER_KEY;
  delete process.env.IB_MASTER_KEY;  // startGateway passes the parent's environment on
  try {
    const started = startGateway({ env: { ...mockProviderEnv(mock), IB_DATABASE_URL: url }, config: CONFIG });
    started.then((gw) => nodes.push(gw), () => {});  // stopped by afterEach if it did start
    await assert.rejects(started, /exited \(\d+\) before listening/);
  } finally {
    if (saved !== undefined) process.env.IB_MASTER_KEY = saved;
  }
});

test('a 429 on node A puts the user in a cooldown for that provider on node B too', async () => {
  const url = await freshDatabase();
  const gws = await startNodes(2, url);
  const [a, b] = gws;
  const u = await signup(a);
  await addKey(a, u.api_key, PRIMARY);
  await addKey(a, u.api_key, FALLBACK);
  const other = await signup(a);
  await addKey(a, other.api_key, PRIMARY);
  await untilAllChat(gws, u.api_key, TIER);
  await untilAllChat(gws, other.api_key, TIER);
  await mockReset(mock);
  await mockScript(mock, PRIMARY, [{ status: 429, retry_after: '30' }]);
  assert.equal((await quickChat(a, u.api_key)).attempts, `${PRIMARY}=429;${FALLBACK}=200`);
  // The cooldown reaches node B through PostgreSQL, within the bound; a poll that lands before it
  // still goes to the provider (and succeeds), so the count is taken once B has it.
  await waitUntil(async () => (await quickChat(b, u.api_key)).attempts === `${PRIMARY}=cooldown;${FALLBACK}=200`,
    { timeoutMs: 1000, what: 'node B to skip the provider for the user in cooldown' });
  const before = await received(PRIMARY);
  for (let i = 0; i < 3; i++) {
    assert.equal((await quickChat(b, u.api_key)).attempts, `${PRIMARY}=cooldown;${FALLBACK}=200`);
  }
  assert.equal(await received(PRIMARY), before, `node B sent the user's request to ${PRIMARY}`);
  // Only that user: another user still reaches the provider through B.
  assert.equal((await quickChat(b, other.api_key)).attempts, `${PRIMARY}=200`);
});

test('a change that no notification announced is picked up by the periodic resync', async () => {
  const url = await freshDatabase();
  const config = { ...CONFIG, store: { resync_interval_ms: 300 } };
  const [a] = await startNodes(1, url, { config });
  const u = await signup(a);
  await addKey(a, u.api_key, 'openai');
  assert.equal((await chat(a, u.api_key)).status, 200);
  // Behind the gateway's back: no NOTIFY goes out.
  await pg.psql(url, `DELETE FROM provider_keys WHERE user_id = '${u.id}'`);
  const gone = await timed(async () => (await chat(a, u.api_key)).status === 424,
    { timeoutMs: 3000, intervalMs: 50, what: 'the resync to drop the deleted key' });
  assert.ok(gone.ms <= 2000, `the resync took ${gone.ms} ms`);
});

test('a database whose schema is newer than the binary is refused at start, with a message saying so', async () => {
  const url = await freshDatabase();
  const first = await startNode(url);
  nodes = nodes.filter((n) => n !== first);
  await stopProcess(first);
  await pg.psql(url, 'INSERT INTO schema_migrations (version) VALUES (999)');
  const started = startNode(url);
  started.catch(() => {});
  await assert.rejects(started, (e) => {
    assert.match(e.message, /schema is at version 999, newer than this binary's \d+/);
    return true;
  });
});

// -- the request history on PostgreSQL: the scenarios request_history.test.mjs runs on LMDB ------

/// A PostgreSQL node (default tiers, `config` merged in) on a fresh database: {gw, stop()}.
async function historyStack(config) {
  const url = await freshDatabase();
  const gw = await startGateway({
    env: { ...mockProviderEnv(mock), IB_MASTER_KEY: MASTER_KEY, IB_DATABASE_URL: url },
    config,
  });
  return { gw, stop: () => stopProcess(gw) };
}

historyCases((name, fn) => test(`PostgreSQL request history: ${name}`, async () => {
  history ??= await historyStack();
  await fn();
}), () => history, historyStack);
