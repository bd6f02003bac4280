// Issue 15, `POST /v1/embeddings` through the official `openai` SDK unchanged: routed by model
// (`provider/model` or an `embedding_models` name), fallback only between entries serving the
// same model, `encoding_format` float and base64 passed through, inputs as a string, strings or
// token arrays. The mock answers 8 floats per input, k/256 from an FNV-1a hash of the input's
// text (bench/mock/openai_extra.cpp), so the expected vectors are computed here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  addKey, api, mockReset, mockRequests, mockScript, sdk, signup, startStack, userWithKeys,
} from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

const config = {
  embedding_models: {
    // Two entries serving the same model: fallback between them only.
    'emb/shared': [
      { provider: 'together', model: 'emb-shared-1' },
      { provider: 'openai', model: 'emb-shared-1' },
    ],
  },
};

let stack;
let user;
let client;

before(async () => {
  stack = await startStack({ config });
  user = await userWithKeys(stack.gw, ['openai', 'together', 'anthropic']);
  client = sdk(stack.gw, user.api_key);
});
after(async () => { if (stack) await stack.stop(); });

/// The mock's vector for one input text (tokens as "1,2,3").
function expectedVector(text) {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const v = [];
  for (let i = 0n; i < 8n; ++i) v.push(Number((h >> (8n * i)) & 0xffn) - 128);
  return v.map((k) => k / 256);
}

async function embeddingCalls() {
  return (await mockRequests(stack.mock)).filter((r) => r.path.endsWith('/embeddings'));
}

test('a string, floats requested: the vector as the provider sent it', async () => {
  await mockReset(stack.mock);
  const { data: res, response } = await client.embeddings
    .create({ model: 'openai/text-embedding-3-small', input: 'hello world', encoding_format: 'float' })
    .withResponse();
  assert.equal(res.object, 'list');
  assert.equal(res.data.length, 1);
  assert.deepEqual(res.data[0].embedding, expectedVector('hello world'));
  assert.equal(res.usage.prompt_tokens, 3);
  assert.match(response.headers.get('x-inferbridge-attempts') ?? '', /openai/);
  const [call] = await embeddingCalls();
  assert.equal(call.path, '/openai/v1/embeddings');
  const sent = JSON.parse(call.body);
  assert.equal(sent.model, 'text-embedding-3-small');
  assert.equal(sent.encoding_format, 'float');
  assert.equal(call.headers.authorization, 'Bearer sk-test-openai-0123456789abcdef');
});

test('the SDK default (base64 on the wire) decodes to the same floats', async () => {
  await mockReset(stack.mock);
  const res = await client.embeddings.create({
    model: 'openai/text-embedding-3-small', input: ['alpha', 'beta'],
  });
  const [call] = await embeddingCalls();
  assert.equal(JSON.parse(call.body).encoding_format, 'base64', 'the SDK asks for base64');
  assert.deepEqual(res.data.map((d) => d.index), [0, 1]);
  assert.deepEqual(res.data[0].embedding, expectedVector('alpha'));
  assert.deepEqual(res.data[1].embedding, expectedVector('beta'));
});

test('base64 requested explicitly: the string passes through unchanged', async () => {
  const res = await client.embeddings.create({
    model: 'openai/text-embedding-3-small', input: 'gamma', encoding_format: 'base64',
  });
  const raw = res.data[0].embedding;
  assert.equal(typeof raw, 'string');
  const buf = Buffer.from(raw, 'base64');
  const decoded = [];
  for (let i = 0; i < buf.length; i += 4) decoded.push(buf.readFloatLE(i));
  assert.equal(buf.length, 8 * 4, 'eight float32 values');
  assert.deepEqual(decoded, expectedVector('gamma'));
});

test('token arrays and arrays of token arrays', async () => {
  const one = await client.embeddings.create({
    model: 'openai/text-embedding-3-small', input: [1, 2, 3], encoding_format: 'float',
  });
  assert.equal(one.data.length, 1);
  assert.deepEqual(one.data[0].embedding, expectedVector('1,2,3'));
  assert.equal(one.usage.prompt_tokens, 3);
  const many = await client.embeddings.create({
    model: 'openai/text-embedding-3-small', input: [[10, 20], [30]], encoding_format: 'float',
  });
  assert.deepEqual(many.data.map((d) => d.embedding), [expectedVector('10,20'), expectedVector('30')]);
  assert.equal(many.usage.prompt_tokens, 3);
});

test('another OpenAI-style provider: together/…', async () => {
  await mockReset(stack.mock);
  const res = await client.embeddings.create({
    model: 'together/emb-shared-1', input: 'delta', encoding_format: 'float',
  });
  assert.deepEqual(res.data[0].embedding, expectedVector('delta'));
  const [call] = await embeddingCalls();
  assert.equal(call.provider, 'together');
});

test('an embedding_models name: the first entry 503 falls back to the second, same model', async () => {
  await mockReset(stack.mock);
  await mockScript(stack.mock, 'together', [{ status: 503 }]);
  const { data: res, response } = await client.embeddings
    .create({ model: 'emb/shared', input: 'epsilon', encoding_format: 'float' })
    .withResponse();
  assert.deepEqual(res.data[0].embedding, expectedVector('epsilon'));
  const calls = await embeddingCalls();
  assert.deepEqual(calls.map((c) => c.provider), ['together', 'openai']);
  assert.deepEqual(calls.map((c) => JSON.parse(c.body).model), ['emb-shared-1', 'emb-shared-1']);
  const attempts = response.headers.get('x-inferbridge-attempts') ?? '';
  assert.match(attempts, /together/);
  assert.match(attempts, /openai/);
});

test('a chat tier as the model: 400 that says why', async () => {
  const err = await client.embeddings.create({ model: 'ib/cheap', input: 'x' })
    .then(() => null, (e) => e);
  assert.equal(err?.status, 400);
  assert.match(err.message, /not comparable/);
});

test('an unknown model: 404', async () => {
  const err = await client.embeddings.create({ model: 'nope-embed', input: 'x' })
    .then(() => null, (e) => e);
  assert.equal(err?.status, 404);
});

test('anthropic/… is refused: Anthropic serves no embeddings', async () => {
  await mockReset(stack.mock);
  const err = await client.embeddings.create({ model: 'anthropic/claude-embed', input: 'x' })
    .then(() => null, (e) => e);
  assert.ok(err, 'expected an error');
  assert.equal(err.status, 400);
  assert.equal(err.code, 'unsupported_by_provider');
  assert.match(err.message, /anthropic/i);
  assert.equal((await embeddingCalls()).length, 0, 'nothing was sent to Anthropic');
});

test('a bad body is refused before any upstream call', async () => {
  await mockReset(stack.mock);
  for (const body of [
    { model: 'openai/text-embedding-3-small' },
    { model: 'openai/text-embedding-3-small', input: '' },
    { model: 'openai/text-embedding-3-small', input: 'x', encoding_format: 'int8' },
    { model: 'openai/text-embedding-3-small', input: [[]] },
  ]) {
    const r = await api(stack.gw, 'POST', '/v1/embeddings', { key: user.api_key, body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
  assert.equal((await embeddingCalls()).length, 0);
});

test('no key for the provider: 424', async () => {
  const u = await signup(stack.gw);
  await addKey(stack.gw, u.api_key, 'groq');
  const err = await sdk(stack.gw, u.api_key).embeddings
    .create({ model: 'openai/text-embedding-3-small', input: 'x' })
    .then(() => null, (e) => e);
  assert.equal(err?.status, 424);
});

test('the request is recorded with its usage', async () => {
  const u = await userWithKeys(stack.gw, ['openai']);
  await sdk(stack.gw, u.api_key).embeddings.create({
    model: 'openai/text-embedding-3-small', input: 'zeta eta theta iota', encoding_format: 'float',
  });
  const rec = await waitUntil(async () => {
    const r = await api(stack.gw, 'GET', '/v1/requests', { key: u.api_key });
    return r.json?.data?.[0];
  }, { what: 'the request record' });
  assert.equal(rec.provider, 'openai');
  assert.equal(rec.status, 200);
  assert.equal(rec.prompt_tokens ?? rec.usage?.prompt_tokens, 5);
});
