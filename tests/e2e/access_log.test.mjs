// The access log (issue 16): one JSON line per finished chat request on stdout, the gateway's own
// events in the same format, and privacy: a marker sent in a prompt, an e-mail address, a
// gateway key or a provider key appears nowhere in the gateway's output, its data dir or /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { addKey, api, signup, startStack, userMessage } from './lib/stack.mjs';
import { filesUnder, waitUntil } from './lib/procs.mjs';

const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ACCESS_FIELDS = [
  'time', 'level', 'msg', 'request_id', 'user_id', 'tier', 'model', 'provider', 'upstream_model',
  'status', 'latency_ms', 'ttfb_ms', 'overhead_ms', 'attempts', 'stream', 'usage',
];

/// The log lines of a gateway's stdout: every line after `listening on ...`.
function logLines(gw) {
  const lines = gw.stdout().split('\n');
  assert.match(lines[0], /^listening on /);
  return lines.slice(1).filter((l) => l !== '');
}

function parsedLog(gw) {
  return logLines(gw).map((l) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      assert.fail(`a log line is not JSON: ${l}`);
    }
  });
}

async function chat(gw, key, body) {
  return api(gw, 'POST', '/v1/chat/completions', { key, body });
}

test('access lines parse as JSON with every field; secrets and content appear nowhere', async () => {
  const marker = `MARKER${crypto.randomBytes(8).toString('hex')}`;
  const stack = await startStack();
  const { gw } = stack;
  let stopped = false;
  try {
    // The e-mail holds the marker in lower case, the prompts and the provider key in upper case.
    const email = `${marker.toLowerCase()}@example.com`;
    const user = await signup(gw, email);
    const providerKey = `sk-${marker}-0123456789abcdef`;
    await addKey(gw, user.api_key, 'openai', providerKey);
    const ok = await chat(gw, user.api_key, {
      model: 'openai/gpt-6-luna', messages: userMessage(`please repeat ${marker}`),
    });
    assert.equal(ok.status, 200, ok.text);
    const streamed = await chat(gw, user.api_key, {
      model: 'openai/gpt-6-luna', messages: userMessage(`stream ${marker}`), stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(streamed.status, 200, streamed.text);
    // No key for anthropic: an error the client sees, still one access line.
    const failed = await chat(gw, user.api_key, {
      model: 'anthropic/claude-haiku-4-5', messages: userMessage(`fail ${marker}`),
    });
    assert.ok(failed.status >= 400, failed.text);
    const ids = [ok, streamed, failed].map((r) => r.headers.get('x-request-id'));
    assert.ok(ids.every((id) => /^req_/.test(id)), ids.join());

    // The log writer is asynchronous: wait (bounded) for the three access lines.
    const access = await waitUntil(() => {
      const lines = parsedLog(gw).filter((l) => l.msg === 'request');
      return ids.every((id) => lines.some((l) => l.request_id === id)) && lines;
    }, { what: 'three access lines' });
    for (const line of parsedLog(gw)) {
      assert.match(line.time, RFC3339_MS);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(line.level), JSON.stringify(line));
      assert.equal(typeof line.msg, 'string');
    }
    assert.ok(parsedLog(gw).some((l) => l.msg === 'inferbridge started' && l.level === 'info'));
    const byId = Object.fromEntries(access.map((l) => [l.request_id, l]));
    for (const id of ids) {
      assert.deepEqual(Object.keys(byId[id]), ACCESS_FIELDS);
      assert.equal(byId[id].level, 'info');
      assert.equal(byId[id].user_id, user.id);
      assert.equal(typeof byId[id].latency_ms, 'number');
      assert.equal(typeof byId[id].overhead_ms, 'number');
      assert.ok(Array.isArray(byId[id].attempts));
    }
    const first = byId[ids[0]];
    assert.equal(first.status, 200);
    assert.equal(first.model, 'openai/gpt-6-luna');
    assert.equal(first.provider, 'openai');
    assert.match(first.upstream_model, /^gpt-6-luna/);  // as the upstream named it
    assert.equal(first.tier, null);
    assert.equal(first.stream, false);
    assert.deepEqual(first.attempts.map((a) => [a.provider, a.status]), [['openai', 200]]);
    assert.equal(typeof first.usage.total_tokens, 'number');
    assert.equal(byId[ids[1]].stream, true);
    assert.equal(typeof byId[ids[1]].ttfb_ms, 'number');
    assert.equal(byId[ids[2]].status, failed.status);
    // The overhead has at most 3 decimals, as the access line writes it.
    for (const id of ids) {
      const raw = logLines(gw).find((l) => l.includes(`"request_id":"${id}"`));
      assert.match(raw, /"overhead_ms":\d+\.\d{3},/);
    }

    const metrics = await api(gw, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    const secrets = [marker, marker.toLowerCase(), email, user.api_key, providerKey];
    for (const s of secrets) {
      assert.ok(!metrics.text.includes(s), `/metrics holds ${s}`);
    }

    // Stop first: the log is complete and the data dir holds everything it will hold.
    await stack.stop();
    stopped = true;
    const output = gw.stdout() + gw.stderr();
    assert.ok(output.includes('"msg":"shutting down"'), 'the shutdown line');
    for (const s of secrets) {
      assert.ok(!output.includes(s), `the gateway's output holds ${s}`);
    }
    // The data dir keeps the e-mail (the users table needs it), never the rest.
    const files = filesUnder(gw.dataDir);
    assert.ok(files.some((f) => f.endsWith('data.mdb')), `no LMDB file in ${files}`);
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      for (const s of [marker, user.api_key, providerKey]) {
        assert.ok(!bytes.includes(Buffer.from(s)), `${f} holds ${s}`);
      }
    }
  } finally {
    if (!stopped) await stack.stop();
  }
});

test('log level and format come from the config, and IB_LOG_LEVEL overrides the level', async () => {
  // Text format at info: human-readable lines, one per request.
  const text = await startStack({ config: { log: { format: 'text', level: 'info' } } });
  try {
    const u = await signup(text.gw);
    await addKey(text.gw, u.api_key, 'openai');
    const r = await chat(text.gw, u.api_key, { model: 'openai/gpt-6-luna', messages: userMessage() });
    assert.equal(r.status, 200, r.text);
    const id = r.headers.get('x-request-id');
    const line = await waitUntil(() => logLines(text.gw).find((l) => l.includes(`request_id=${id}`)),
      { what: 'a text access line' });
    assert.match(line, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z request request_id=req_\S+ user_id=usr_\S+ /);
    assert.match(line, / status=200 /);
    assert.ok(logLines(text.gw).some((l) => / inferbridge started /.test(l)));
  } finally {
    await text.stop();
  }

  // IB_LOG_LEVEL=warn over a config saying debug: neither access nor startup lines.
  const quiet = await startStack({
    config: { log: { level: 'debug' } }, env: { IB_LOG_LEVEL: 'warn' },
  });
  try {
    const u = await signup(quiet.gw);
    await addKey(quiet.gw, u.api_key, 'openai');
    const r = await chat(quiet.gw, u.api_key, { model: 'openai/gpt-6-luna', messages: userMessage() });
    assert.equal(r.status, 200, r.text);
    // The record reached the metrics actor (and would have been logged) once it is listed.
    await waitUntil(async () => (await api(quiet.gw, 'GET', '/v1/requests', { key: u.api_key }))
      .json?.data?.length === 1, { what: 'the request record' });
  } finally {
    await quiet.stop();
  }
  assert.deepEqual(logLines(quiet.gw), [], 'nothing below warn is written');
});
