// Keys at rest and between users: isolation, no plaintext on disk, Fernet interop with Python's
// cryptography in both directions, and durability across kill -9.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
  addKey, api, callsTo, mockReset, restartGateway, sdk, signup, startGateway, startStack,
  userMessage, mockProviderEnv,
} from './lib/stack.mjs';
import { filesUnder, stopProcess, waitUntil } from './lib/procs.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });

function python(code, ...args) {
  return execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' }).trim();
}

/// The Fernet tokens stored in the provider_keys database (read with lmdb-utils' mdb_dump).
function storedTokens(dataDir) {
  const dump = execFileSync('mdb_dump', ['-p', '-s', 'provider_keys', dataDir], { encoding: 'utf8' });
  return [...dump.matchAll(/gAAAAA[A-Za-z0-9_=-]+/g)].map((m) => m[0]);
}

test('one user can never see, delete or use another user\'s keys', async () => {
  const { gw, mock } = stack;
  await mockReset(mock);
  const a = await signup(gw);
  const b = await signup(gw);
  await addKey(gw, a.api_key, 'openai', 'sk-alice-000000000000aaaa');
  assert.deepEqual((await api(gw, 'GET', '/v1/keys', { key: b.api_key })).json.data, []);
  assert.equal((await api(gw, 'DELETE', '/v1/keys/openai', { key: b.api_key })).status, 404);
  assert.equal((await api(gw, 'GET', '/v1/keys', { key: a.api_key })).json.data.length, 1);
  await assert.rejects(sdk(gw, b.api_key).chat.completions.create({ model: 'ib/balanced', messages: userMessage() }),
    (err) => err.status === 424);

  await addKey(gw, b.api_key, 'openai', 'sk-bob-00000000000000bbbb');
  await sdk(gw, a.api_key).chat.completions.create({ model: 'openai/gpt-4o-mini', messages: userMessage() });
  await sdk(gw, b.api_key).chat.completions.create({ model: 'openai/gpt-4o-mini', messages: userMessage() });
  const auth = (await callsTo(mock, 'openai')).map((c) => c.headers.authorization);
  assert.deepEqual(auth, ['Bearer sk-alice-000000000000aaaa', 'Bearer sk-bob-00000000000000bbbb']);
  // Each user's request log is their own.
  await waitUntil(async () => (await api(gw, 'GET', '/v1/requests', { key: a.api_key })).json?.data?.length === 1,
    { what: 'alice\'s request record' });
  const bRecords = (await api(gw, 'GET', '/v1/requests', { key: b.api_key })).json.data;
  assert.equal(bRecords.length, 2);
  assert.ok(bRecords.every((r) => !JSON.stringify(r).includes('Hello')), 'prompt content in a record');
});

test('provider keys never appear in plain text in any file under the data dir', async () => {
  const { gw } = stack;
  const u = await signup(gw);
  const secret = 'sk-plaintext-probe-Z9Y8X7W6V5U4T3S2';
  await addKey(gw, u.api_key, 'together', secret);
  const files = filesUnder(gw.dataDir);
  assert.ok(files.some((f) => f.endsWith('data.mdb')), `no LMDB file in ${files}`);
  for (const f of files) {
    const bytes = fs.readFileSync(f);
    assert.ok(!bytes.includes(Buffer.from(secret)), `${f} holds the provider key in plain text`);
    assert.ok(!bytes.includes(Buffer.from(u.api_key)), `${f} holds the gateway key in plain text`);
  }
  const mode = fs.statSync(path.join(gw.dataDir, 'master.key')).mode & 0o777;
  assert.equal(mode, 0o600);
});

test('stored tokens decrypt with Python\'s Fernet, and Python\'s tokens decrypt in the gateway', async () => {
  const { mock } = stack;
  const masterKey = python('from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())');
  const env = { ...mockProviderEnv(mock), IB_MASTER_KEY: masterKey };
  let gw = await startGateway({ env });
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'deepseek', 'sk-deepseek-written-by-cpp-1234');
  const [token] = storedTokens(gw.dataDir);
  assert.ok(token, 'no Fernet token in provider_keys');
  assert.equal(python('import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())',
    masterKey, token), 'sk-deepseek-written-by-cpp-1234');
  await stopProcess(gw);

  // Replace the stored token with one Python made, then let the gateway use it upstream.
  const pyToken = python('import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).encrypt(b"sk-deepseek-written-by-python").decode())', masterKey);
  const dump = execFileSync('mdb_dump', ['-p', '-s', 'provider_keys', gw.dataDir], { encoding: 'utf8' });
  const patched = path.join(path.dirname(gw.dataDir), 'provider_keys.dump');
  fs.writeFileSync(patched, dump.replace(token, pyToken));
  execFileSync('mdb_load', ['-s', 'provider_keys', '-f', patched, gw.dataDir]);

  gw = await restartGateway(gw);
  try {
    await mockReset(mock);
    await sdk(gw, u.api_key).chat.completions.create({ model: 'deepseek/deepseek-chat', messages: userMessage() });
    const [call] = await callsTo(mock, 'deepseek');
    assert.equal(call.headers.authorization, 'Bearer sk-deepseek-written-by-python');
  } finally {
    await stopProcess(gw);
  }
});

test('a master key that decrypts none of the stored keys is refused at start', async () => {
  const { mock } = stack;
  const k1 = python('from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())');
  const k2 = python('from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())');
  const gw = await startGateway({ env: { ...mockProviderEnv(mock), IB_MASTER_KEY: k1 } });
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'openai');
  await stopProcess(gw);
  await assert.rejects(restartGateway({ ...gw, env: { ...gw.env, IB_MASTER_KEY: k2 } }),
    /decrypts none of the 1 stored provider keys/);
  // Rotation: the old key second, the new first.
  const rotate = execFileSync(path.join(process.env.IB_BUILD_DIR ?? 'build-test', 'inferbridge'), ['rotate-master-key'], {
    env: { ...process.env, IB_DATA_DIR: gw.dataDir, IB_MASTER_KEY: `${k2},${k1}` }, encoding: 'utf8',
  });
  assert.match(rotate, /re-encrypted 1 provider keys/);
  const g2 = await restartGateway({ ...gw, env: { ...gw.env, IB_MASTER_KEY: k2 } });
  await stopProcess(g2);
});

test('a user and their key survive kill -9 and a restart', async () => {
  const { mock } = stack;
  const gw = await startGateway({ env: mockProviderEnv(mock) });
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'sarvam', 'sk-sarvam-durable-123456789');
  gw.proc.stopping = true;
  gw.proc.kill('SIGKILL');
  await new Promise((r) => gw.proc.once('exit', r));
  const again = await restartGateway(gw);
  try {
    const keys = await api(again, 'GET', '/v1/keys', { key: u.api_key });
    assert.equal(keys.status, 200);
    assert.deepEqual(keys.json.data.map((k) => k.provider), ['sarvam']);
    await mockReset(mock);
    const { response } = await sdk(again, u.api_key).chat.completions
      .create({ model: 'sarvam/sarvam-30b', messages: userMessage() }).withResponse();
    assert.equal(response.headers.get('x-inferbridge-provider'), 'sarvam');
    const [call] = await callsTo(mock, 'sarvam');
    assert.equal(call.headers['api-subscription-key'], 'sk-sarvam-durable-123456789');
    // The email stays taken.
    const dup = await api(again, 'POST', '/v1/users', { body: { email: u.email.toUpperCase() } });
    assert.equal(dup.status, 409);
    assert.equal(dup.headers.get('x-should-retry'), 'false');
  } finally {
    await stopProcess(again);
  }
});
