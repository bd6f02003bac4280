// The command line: --check-config prints the resolved tiers; a bad config is refused at start
// with a message naming the field; env overrides apply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { buildDir } from './lib/procs.mjs';
import { tempDir } from './lib/stack.mjs';

const bin = path.join(buildDir, 'inferbridge');

function run(args, env = {}) {
  return spawnSync(bin, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20000 });
}

function configFile(text) {
  const f = path.join(tempDir('ib-cli-'), 'config.json');
  fs.writeFileSync(f, text);
  return f;
}

test('--check-config prints the resolved default tiers', () => {
  const r = run(['--check-config'], { IB_OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ib\/balanced: openai\/\S+ -> sarvam\/\S+ -> anthropic\/\S+/);
  assert.match(r.stdout, /ib\/cheap: groq\/\S+ -> deepseek\/\S+ -> together\/\S+ -> sarvam\/\S+ -> openai\/\S+/);
  assert.match(r.stdout, /openai: openai, http:\/\/127\.0\.0\.1:9\/v1/);
  assert.match(r.stdout, /configuration OK/);
});

test('a config file with comments is accepted; invalid ones are refused naming the field', () => {
  const ok = configFile(`{
    // a comment
    "listen": "127.0.0.1:0",
    "tiers": { "t/one": [ { "provider": "groq", "model": "llama-3.1-8b-instant" } ] },
  }`);
  const good = run(['--config', ok, '--check-config']);
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /t\/one: groq\/llama-3\.1-8b-instant/);

  for (const [text, field] of [
    ['{"tiers": {"t/x": [{"provider": "nope", "model": "m"}]}}', 'tiers.t/x[0].provider'],
    ['{"providers": {"openai": {"timeouts_ms": {"connect": -1}}}}', 'providers.openai.timeouts_ms.connect'],
    ['{"listen": "nowhere"}', 'listen'],
    ['{"limits": {"max_body_bytes": "big"}}', 'limits.max_body_bytes'],
    ['{"lisen": "127.0.0.1:1"}', 'lisen'],
    ['{"listen": ', ''],
  ]) {
    const bad = run(['--config', configFile(text)]);
    assert.equal(bad.status, 2, `${text}: ${bad.stderr}`);
    assert.match(bad.stderr, /invalid configuration/);
    if (field) assert.ok(bad.stderr.includes(field), `${text}: ${bad.stderr}`);
  }
  const env = run(['--check-config'], { IB_OPENAI_BASE_URL: 'ftp://x' });
  assert.equal(env.status, 2);
  assert.match(env.stderr, /IB_OPENAI_BASE_URL/);
});
