// Master-key rotation that leaves nothing behind (issue 18): after `inferbridge rotate-master-key`
// no byte of any file under the data dir decrypts under the retired key (LMDB's freed pages
// included: the store is compacted), Python's Fernet decrypts the new tokens with the new key, the
// gateway restarted with only the new key serves every user, and a rotation killed half way is
// completed by running it again. Also `inferbridge compact` after DELETE /v1/keys.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
  addKey, api, callsTo, mockProviderEnv, mockReset, restartGateway, sdk, signup, startGateway,
  userMessage,
} from './lib/stack.mjs';
import { buildDir, filesUnder, startMock, stopProcess, waitUntil } from './lib/procs.mjs';

const BIN = path.join(buildDir, 'inferbridge');

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await stopProcess(mock); });

function python(code, ...args) {
  return execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' }).trim();
}

const newKey = () => python('from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())');

/// Scans the raw bytes of every file under `dir` for Fernet-token-shaped substrings (url-safe
/// base64 starting `gAAAAA`; every prefix of a valid token length is tried, so bytes that happen
/// to follow a token in a freed page cannot hide it) and counts, per named key, the distinct
/// tokens that decrypt under it, with the files they were found in.
const SCAN = String.raw`
import json, os, re, sys
from cryptography.fernet import Fernet, InvalidToken
root, keys = sys.argv[1], json.loads(sys.argv[2])
fernets = {name: Fernet(k.encode()) for name, k in keys.items()}
lengths = sorted({4 * ((57 + 16 * k + 2) // 3) for k in range(1, 400)})
out = {'files': [], 'shaped': 0, 'decrypts': {n: 0 for n in keys}, 'where': {n: [] for n in keys}}
seen = {n: set() for n in keys}
for d, _, names in os.walk(root):
    for name in names:
        p = os.path.join(d, name)
        out['files'].append(os.path.relpath(p, root))
        data = open(p, 'rb').read()
        for m in re.finditer(rb'gAAAAA[A-Za-z0-9_=-]+', data):
            out['shaped'] += 1
            s = m.group(0)
            for n, f in fernets.items():
                for L in lengths:
                    if L > len(s):
                        break
                    tok = s[:L]
                    try:
                        f.decrypt(tok)
                    except (InvalidToken, ValueError):
                        continue
                    if tok not in seen[n]:
                        seen[n].add(tok)
                        out['decrypts'][n] += 1
                        if os.path.relpath(p, root) not in out['where'][n]:
                            out['where'][n].append(os.path.relpath(p, root))
                    break
print(json.dumps(out))
`;

function scan(dir, keys) {
  return JSON.parse(python(SCAN, dir, JSON.stringify(keys)));
}

/// Live tokens of provider_keys (lmdb-utils' mdb_dump), as a list.
function liveTokens(dataDir) {
  const dump = execFileSync('mdb_dump', ['-p', '-s', 'provider_keys', dataDir], { encoding: 'utf8' });
  return [...dump.matchAll(/gAAAAA[A-Za-z0-9_=-]+/g)].map((m) => m[0]);
}

/// How many of `tokens` decrypt under each named key.
function countByKey(tokens, keys) {
  return JSON.parse(python(String.raw`
import json, sys
from cryptography.fernet import Fernet, InvalidToken
keys, toks = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {n: 0 for n in keys}
out['none'] = 0
for t in toks:
    for n, k in keys.items():
        try:
            Fernet(k.encode()).decrypt(t.encode()); out[n] += 1; break
        except Exception:
            pass
    else:
        out['none'] += 1
print(json.dumps(out))`, JSON.stringify(keys), JSON.stringify(tokens)));
}

function rotate(dataDir, env = {}, args = []) {
  return spawnSync(BIN, ['rotate-master-key', ...args], {
    env: { ...process.env, IB_DATA_DIR: dataDir, ...env }, encoding: 'utf8', timeout: 120000,
  });
}

/// Signs up `n` users with keys for openai and groq, replaces one key and deletes another (so
/// that freed pages hold old tokens), and checks that chats work.
async function populate(gw, n) {
  const users = [];
  for (let i = 0; i < n; ++i) {
    const u = await signup(gw);
    await addKey(gw, u.api_key, 'openai', `sk-rot-openai-${i}-000000000000`);
    await addKey(gw, u.api_key, 'groq', `sk-rot-groq-${i}-00000000000000`);
    await addKey(gw, u.api_key, 'deepseek', `sk-rot-deepseek-${i}-0000000000`);
    await addKey(gw, u.api_key, 'openai', `sk-rot-openai-${i}-replaced-0000`);  // replaces
    assert.equal((await api(gw, 'DELETE', '/v1/keys/deepseek', { key: u.api_key })).status, 204);
    users.push({ ...u, openai: `sk-rot-openai-${i}-replaced-0000` });
  }
  return users;
}

async function chatsWork(gw, users) {
  await mockReset(mock);
  for (const u of users) {
    await sdk(gw, u.api_key).chat.completions.create({ model: 'openai/gpt-4o-mini', messages: userMessage() });
  }
  const auth = (await callsTo(mock, 'openai')).map((c) => c.headers.authorization);
  assert.deepEqual(auth, users.map((u) => `Bearer ${u.openai}`));
}

test('after rotate-master-key no byte under the data dir decrypts under the retired key', async () => {
  const oldKey = newKey();
  const freshKey = newKey();
  const keys = { old: oldKey, new: freshKey };
  let gw = await startGateway({ env: { ...mockProviderEnv(mock), IB_MASTER_KEY: oldKey } });
  const users = await populate(gw, 4);
  await chatsWork(gw, users);

  // Refused while the gateway has the store open; nothing changes.
  const busy = rotate(gw.dataDir, { IB_MASTER_KEY: `${freshKey},${oldKey}` });
  assert.equal(busy.status, 2, busy.stdout + busy.stderr);
  assert.match(busy.stderr, new RegExp(`in use by process ${gw.proc.pid}`));
  assert.deepEqual(countByKey(liveTokens(gw.dataDir), keys), { old: 8, new: 0, none: 0 });
  await stopProcess(gw);

  // Before: the replaced and deleted keys' tokens are still in data.mdb's freed pages.
  const pre = scan(gw.dataDir, keys);
  assert.ok(pre.decrypts.old > 8, `expected stale old tokens besides the 8 live ones: ${JSON.stringify(pre)}`);

  const r = rotate(gw.dataDir, { IB_MASTER_KEY: `${freshKey},${oldKey}` });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /re-encrypted 8 provider keys under the first master key/);
  assert.match(r.stdout, /8 of 8 provider keys done/);
  assert.match(r.stdout, /compacted .*data\.mdb: \d+ -> \d+ bytes/);

  const post = scan(gw.dataDir, keys);
  assert.equal(post.decrypts.old, 0, `tokens under the retired key remain in ${post.where.old}`);
  assert.equal(post.decrypts.new, 8, JSON.stringify(post));
  assert.ok(!post.files.some((f) => f.includes('compact') || f.includes('.tmp')), `leftovers: ${post.files}`);
  // Python's Fernet decrypts every live token with the new key alone.
  assert.deepEqual(countByKey(liveTokens(gw.dataDir), { new: freshKey }), { new: 8, none: 0 });

  // Only the new key from now on.
  gw = await restartGateway({ ...gw, env: { ...gw.env, IB_MASTER_KEY: freshKey } });
  try {
    await chatsWork(gw, users);
    for (const u of users) {
      const keysNow = await api(gw, 'GET', '/v1/keys', { key: u.api_key });
      assert.deepEqual(keysNow.json.data.map((k) => k.provider).sort(), ['groq', 'openai']);
    }
  } finally {
    await stopProcess(gw);
  }
});

test('rotation with master.key: a new key replaces the file and the old key is gone', async () => {
  let gw = await startGateway({ env: mockProviderEnv(mock) });
  const users = await populate(gw, 2);
  await stopProcess(gw);
  const keyFile = path.join(gw.dataDir, 'master.key');
  const oldKey = fs.readFileSync(keyFile, 'utf8').trim();

  const r = rotate(gw.dataDir);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /re-encrypted 4 provider keys under the new master key/);
  const freshKey = fs.readFileSync(keyFile, 'utf8').trim();
  assert.notEqual(freshKey, oldKey);
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);

  const post = scan(gw.dataDir, { old: oldKey, new: freshKey });
  assert.equal(post.decrypts.old, 0, `tokens under the retired key remain in ${post.where.old}`);
  assert.equal(post.decrypts.new, 4);
  assert.deepEqual(post.files.sort(), ['data.mdb', 'lock.mdb', 'master.key']);
  for (const f of filesUnder(gw.dataDir)) {
    assert.ok(!fs.readFileSync(f).includes(Buffer.from(oldKey)), `${f} still holds the retired key`);
  }

  gw = await restartGateway(gw);
  try {
    await chatsWork(gw, users);
  } finally {
    await stopProcess(gw);
  }
});

/// Adds `n` provider keys (`bulk0000`...) for `userId` straight into the stopped store with
/// lmdb-utils' mdb_load, their tokens made by Python's Fernet under `key`.
function seedBulkKeys(dataDir, userId, key, n) {
  const tokens = JSON.parse(python(String.raw`
import json, sys
from cryptography.fernet import Fernet
f = Fernet(sys.argv[1].encode())
print(json.dumps([f.encrypt(('sk-bulk-%04d-0123456789abcdef' % i).encode()).decode() for i in range(int(sys.argv[2]))]))`,
  key, String(n)));
  // mdb_load -T: key line, value line; `\00` is the NUL separator of `user_id \0 provider`.
  const lines = tokens.map((t, i) => {
    const name = `bulk${String(i).padStart(4, '0')}`;
    return `${userId}\\00${name}\n${JSON.stringify({ token: t, hint: 'sk-...cdef', created: 1700000000 })}\n`;
  });
  const file = path.join(path.dirname(dataDir), 'bulk.txt');
  fs.writeFileSync(file, lines.join(''));
  execFileSync('mdb_load', ['-T', '-s', 'provider_keys', '-f', file, dataDir]);
}

test('a rotation killed half way still decrypts everything, and running it again completes it', async () => {
  const oldKey = newKey();
  const freshKey = newKey();
  const keys = { old: oldKey, new: freshKey };
  let gw = await startGateway({ env: { ...mockProviderEnv(mock), IB_MASTER_KEY: oldKey } });
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'openai', 'sk-rot-openai-kill-0000000000');
  await stopProcess(gw);
  seedBulkKeys(gw.dataDir, u.id, oldKey, 400);
  const total = 401;
  assert.deepEqual(countByKey(liveTokens(gw.dataDir), keys), { old: total, new: 0, none: 0 });

  // Batches of 50; the fourth holds before its commit (its writes done) until we kill -9 it.
  const proc = spawn(BIN, ['rotate-master-key', '--batch-size', '50'], {
    env: {
      ...process.env, IB_DATA_DIR: gw.dataDir, IB_MASTER_KEY: `${freshKey},${oldKey}`,
      IB_TEST_ROTATION_HOLD_AFTER_BATCHES: '3',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)));
  try {
    await waitUntil(() => /holding batch 4/.test(out), { timeoutMs: 60000, what: `the rotation to hold:\n${out}` });
    assert.match(out, /150 of 401 provider keys done/);
  } finally {
    proc.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL');

  // Every token decrypts under the old or the new key: three batches were committed, the fourth
  // was not.
  assert.deepEqual(countByKey(liveTokens(gw.dataDir), keys), { old: total - 150, new: 150, none: 0 });
  gw = await restartGateway({ ...gw, env: { ...gw.env, IB_MASTER_KEY: `${freshKey},${oldKey}` } });
  await chatsWork(gw, [{ ...u, openai: 'sk-rot-openai-kill-0000000000' }]);
  await stopProcess(gw);

  const again = rotate(gw.dataDir, { IB_MASTER_KEY: `${freshKey},${oldKey}` }, ['--batch-size', '50']);
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /re-encrypted 251 provider keys under the first master key \(150 already were\)/);

  const post = scan(gw.dataDir, keys);
  assert.equal(post.decrypts.old, 0, `tokens under the retired key remain in ${post.where.old}`);
  assert.equal(post.decrypts.new, total);
  assert.deepEqual(countByKey(liveTokens(gw.dataDir), { new: freshKey }), { new: total, none: 0 });

  gw = await restartGateway({ ...gw, env: { ...gw.env, IB_MASTER_KEY: freshKey } });
  try {
    await chatsWork(gw, [{ ...u, openai: 'sk-rot-openai-kill-0000000000' }]);
    const listed = await api(gw, 'GET', '/v1/keys', { key: u.api_key });
    assert.equal(listed.status, 200);
    assert.equal(listed.json.data.length, total);
  } finally {
    await stopProcess(gw);
  }
});

test('compact removes the bytes of a deleted key from data.mdb', async () => {
  const key = newKey();
  let gw = await startGateway({ env: { ...mockProviderEnv(mock), IB_MASTER_KEY: key } });
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'groq', 'sk-deleted-groq-000000000000');
  await addKey(gw, u.api_key, 'openai', 'sk-kept-openai-000000000000');
  assert.equal((await api(gw, 'DELETE', '/v1/keys/groq', { key: u.api_key })).status, 204);

  const busy = spawnSync(BIN, ['compact'], { env: { ...process.env, IB_DATA_DIR: gw.dataDir }, encoding: 'utf8' });
  assert.equal(busy.status, 2);
  assert.match(busy.stderr, /in use by process/);
  await stopProcess(gw);

  const plainOf = (dir) => {
    const data = fs.readFileSync(path.join(dir, 'data.mdb'));
    return python(String.raw`
import re, sys
from cryptography.fernet import Fernet
f, data, out = Fernet(sys.argv[1].encode()), open(sys.argv[2], 'rb').read(), set()
for m in re.finditer(rb'gAAAAA[A-Za-z0-9_=-]+', data):
    try: out.add(f.decrypt(m.group(0)).decode())
    except Exception: pass
print(','.join(sorted(out)))`, key, path.join(dir, 'data.mdb')) + (data.length ? '' : '');
  };
  assert.match(plainOf(gw.dataDir), /sk-deleted-groq/);  // still in a freed page
  const r = spawnSync(BIN, ['compact'], { env: { ...process.env, IB_DATA_DIR: gw.dataDir }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /compacted .*data\.mdb: \d+ -> \d+ bytes/);
  assert.equal(plainOf(gw.dataDir), 'sk-kept-openai-000000000000');

  gw = await restartGateway(gw);
  try {
    await chatsWork(gw, [{ ...u, openai: 'sk-kept-openai-000000000000' }]);
  } finally {
    await stopProcess(gw);
  }
});
