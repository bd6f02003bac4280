// The launch article's three steps, end to end: sign up, register a provider key, and get a
// normal chat.completion through the official OpenAI SDK with model "ib/balanced".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { api, callsTo, sdk, startStack, userMessage } from './lib/stack.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });

test('sign up, add an OpenAI key, chat through ib/balanced with the OpenAI SDK', async () => {
  const { gw, mock } = stack;
  // 1. POST /v1/users
  const user = await api(gw, 'POST', '/v1/users', { body: { email: 'Me@Example.com' } });
  assert.equal(user.status, 201, user.text);
  assert.match(user.json.api_key, /^ib_[0-9A-Za-z]{32}$/);
  assert.match(user.json.id, /^usr_/);
  assert.equal(user.json.email, 'Me@Example.com');
  assert.equal(typeof user.json.created, 'number');

  // 2. POST /v1/keys
  const key = await api(gw, 'POST', '/v1/keys', {
    key: user.json.api_key,
    body: { provider: 'openai', api_key: 'sk-proj-seedtest0123456789wxyz' },
  });
  assert.equal(key.status, 201, key.text);
  assert.deepEqual(Object.keys(key.json).sort(), ['created', 'key_hint', 'provider']);
  assert.equal(key.json.provider, 'openai');
  assert.equal(key.json.key_hint, 'sk-…wxyz');

  // 3. The official SDK, two lines changed.
  const client = sdk(gw, user.json.api_key);
  const { data, response } = await client.chat.completions
    .create({ model: 'ib/balanced', messages: userMessage('What is InferBridge?') })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.match(data.choices[0].message.content, /Hello from mock openai! You said: What is InferBridge\?/);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.total_tokens > 0);
  assert.equal(data.model, 'gpt-6-luna-2025-01-01', 'body model is the upstream model that answered');
  assert.equal(response.headers.get('x-inferbridge-tier'), 'ib/balanced');
  assert.equal(response.headers.get('x-inferbridge-provider'), 'openai');
  assert.equal(response.headers.get('x-inferbridge-model'), 'gpt-6-luna-2025-01-01');
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
  assert.match(response.headers.get('x-request-id'), /^req_[0-9a-f]{24}$/);

  // Upstream saw the provider key (fresh headers) and the tier's model, never the gateway key.
  const calls = await callsTo(mock, 'openai');
  assert.equal(calls.length, 1);
  const up = calls[0];
  assert.equal(up.headers.authorization, 'Bearer sk-proj-seedtest0123456789wxyz');
  assert.equal(JSON.parse(up.body).model, 'gpt-6-luna');
  const leaked = JSON.stringify(up.headers);
  assert.ok(!leaked.includes('ib_'), 'gateway key leaked upstream');
  assert.ok(!Object.keys(up.headers).some((h) => h.startsWith('x-stainless')), 'client headers leaked');
});

test('GET /v1/keys lists hints only; GET /v1/models lists tiers then provider/model', async () => {
  const { gw } = stack;
  const user = await api(gw, 'POST', '/v1/users', { body: { email: 'lister@example.com' } });
  const k = user.json.api_key;
  await api(gw, 'POST', '/v1/keys', { key: k, body: { provider: 'groq', api_key: 'gsk_abcdefghijklmnop1234' } });
  await api(gw, 'POST', '/v1/keys', { key: k, body: { provider: 'anthropic', api_key: 'sk-ant-api03-zzzzzzzzzzzz9876' } });
  const list = await api(gw, 'GET', '/v1/keys', { key: k });
  assert.equal(list.status, 200);
  assert.equal(list.json.object, 'list');
  assert.deepEqual(list.json.data.map((d) => [d.provider, d.key_hint]),
    [['anthropic', 'sk-…9876'], ['groq', 'gsk_…1234']]);
  assert.ok(!list.text.includes('abcdefghijklmnop'), 'key material in the listing');

  const models = await sdk(gw, k).models.list();
  const ids = [];
  for await (const m of models) ids.push(m.id);
  assert.deepEqual(ids.slice(0, 3), ['ib/cheap', 'ib/balanced', 'ib/premium']);
  assert.ok(ids.includes('openai/gpt-6-luna'));
  assert.ok(ids.includes('groq/openai/gpt-oss-120b'));
});

test('replacing a key answers 200; deleting answers 204 then 404', async () => {
  const { gw } = stack;
  const user = await api(gw, 'POST', '/v1/users', { body: { email: 'replacer@example.com' } });
  const k = user.json.api_key;
  const first = await api(gw, 'POST', '/v1/keys', { key: k, body: { provider: 'openai', api_key: 'sk-one-111111111111' } });
  assert.equal(first.status, 201);
  const second = await api(gw, 'POST', '/v1/keys', { key: k, body: { provider: 'openai', api_key: 'sk-two-222222222222' } });
  assert.equal(second.status, 200);
  assert.equal(second.json.key_hint, 'sk-…2222');
  const del = await api(gw, 'DELETE', '/v1/keys/openai', { key: k });
  assert.equal(del.status, 204);
  assert.equal(del.text, '');
  const again = await api(gw, 'DELETE', '/v1/keys/openai', { key: k });
  assert.equal(again.status, 404);
  assert.equal(again.json.error.code, 'key_not_found');
});
