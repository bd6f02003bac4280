// Routing and fallback through the real gateway (design §4), driven by the official OpenAI SDK.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';

import {
  addKey, api, callsTo, mockReset, mockScript, sdk, signup, startGateway, startStack,
  userWithKeys, userMessage, mockProviderEnv,
} from './lib/stack.mjs';
import { stopProcess } from './lib/procs.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

async function chat(key, body = {}) {
  return sdk(stack.gw, key).chat.completions
    .create({ model: 'ib/balanced', messages: userMessage(), ...body })
    .withResponse();
}

for (const [name, step, token] of [
  ['500', { status: 500 }, 'openai=500'],
  ['503', { status: 503 }, 'openai=503'],
  ['429', { status: 429, retry_after: '1' }, 'openai=429'],
  ['a reset connection', { behaviour: 'reset-before' }, 'openai=reset'],
  ['a rejected provider key (401)', { status: 401 }, 'openai=401'],
]) {
  test(`falls back to the next provider on ${name}`, async () => {
    const u = await userWithKeys(stack.gw, ['openai', 'sarvam']);
    // A reset on a reused keep-alive connection is retried once on a fresh one (it may be the
    // upstream closing an idle connection); script it twice so that the fresh one fails too.
    const reset = step.behaviour === 'reset-before';
    await mockScript(stack.mock, 'openai', reset ? [step, step] : [step]);
    const { data, response } = await chat(u.api_key);
    assert.equal(response.headers.get('x-inferbridge-provider'), 'sarvam');
    assert.equal(response.headers.get('x-inferbridge-attempts'), `${token};sarvam=200`);
    assert.match(data.choices[0].message.content, /Hello from mock sarvam/);
    const openaiCalls = (await callsTo(stack.mock, 'openai')).length;
    assert.ok(reset ? openaiCalls === 1 || openaiCalls === 2 : openaiCalls === 1, `${openaiCalls} calls`);
    assert.equal((await callsTo(stack.mock, 'sarvam')).length, 1);
  });
}

for (const status of [400, 404, 413, 422]) {
  test(`does not fall back on ${status}: the provider's error comes back with the same status`, async () => {
    const u = await userWithKeys(stack.gw, ['openai', 'sarvam']);
    await mockScript(stack.mock, 'openai', [{ status }]);
    await assert.rejects(chat(u.api_key), (err) => {
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.status, status);
      assert.equal(err.headers.get('x-inferbridge-attempts'), `openai=${status}`);
      assert.equal(err.headers.get('x-should-retry'), 'false');
      assert.equal(typeof err.error.message, 'string');
      return true;
    });
    assert.equal((await callsTo(stack.mock, 'sarvam')).length, 0);
  });
}

test('skips providers the user has no key for', async () => {
  const u = await userWithKeys(stack.gw, ['anthropic']);
  const { data, response } = await chat(u.api_key);
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=no_key;sarvam=no_key;anthropic=200');
  assert.equal(response.headers.get('x-inferbridge-provider'), 'anthropic');
  assert.equal(data.object, 'chat.completion');
  assert.match(data.choices[0].message.content, /Hello from mock anthropic/);
  assert.equal((await callsTo(stack.mock, 'openai')).length, 0);
});

test('424 naming the providers to register when the user has no key for the tier', async () => {
  const u = await signup(stack.gw);
  await assert.rejects(chat(u.api_key), (err) => {
    assert.equal(err.status, 424);
    assert.match(err.message, /openai, sarvam, anthropic/);
    assert.equal(err.code, 'no_provider_key');
    assert.equal(err.headers.get('x-inferbridge-attempts'), 'openai=no_key;sarvam=no_key;anthropic=no_key');
    return true;
  });
});

test('401 in the OpenAI envelope for a bad gateway key', async () => {
  await assert.rejects(chat('ib_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(err.code, 'invalid_api_key');
    return true;
  });
  const r = await api(stack.gw, 'POST', '/v1/chat/completions', { body: { model: 'ib/balanced', messages: userMessage() } });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.type, 'authentication_error');
});

test('all providers failed: 502 with inferbridge_attempts, and the SDK does not retry the chain', async () => {
  const u = await userWithKeys(stack.gw, ['openai', 'sarvam', 'anthropic']);
  for (const p of ['openai', 'sarvam', 'anthropic']) {
    await mockScript(stack.mock, p, [{ status: 503 }, { status: 503 }, { status: 503 }]);
  }
  const client = sdk(stack.gw, u.api_key, { maxRetries: 2 });
  await assert.rejects(
    client.chat.completions.create({ model: 'ib/balanced', messages: userMessage() }),
    (err) => {
      assert.equal(err.status, 502);
      assert.equal(err.code, 'all_providers_failed');
      assert.equal(err.headers.get('x-should-retry'), 'false');
      assert.deepEqual(err.error.inferbridge_attempts.map((a) => [a.provider, a.status]),
        [['openai', 503], ['sarvam', 503], ['anthropic', 503]]);
      for (const a of err.error.inferbridge_attempts) assert.equal(typeof a.latency_ms, 'number');
      return true;
    });
  for (const p of ['openai', 'sarvam', 'anthropic']) {
    assert.equal((await callsTo(stack.mock, p)).length, 1, `${p} called more than once`);
  }
});

test('provider/model routes to that provider only, with no fallback', async () => {
  const u = await userWithKeys(stack.gw, ['groq', 'openai']);
  const { data, response } = await sdk(stack.gw, u.api_key).chat.completions
    .create({ model: 'groq/openai/gpt-oss-120b', messages: userMessage() }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-tier'), 'direct');
  assert.equal(response.headers.get('x-inferbridge-provider'), 'groq');
  assert.equal(JSON.parse((await callsTo(stack.mock, 'groq'))[0].body).model, 'openai/gpt-oss-120b');
  assert.equal(data.object, 'chat.completion');

  await mockScript(stack.mock, 'groq', [{ status: 503 }]);
  await assert.rejects(sdk(stack.gw, u.api_key).chat.completions
    .create({ model: 'groq/llama-3.1-8b-instant', messages: userMessage() }), (err) => {
    assert.equal(err.status, 502);
    assert.equal(err.headers.get('x-inferbridge-attempts'), 'groq=503');
    return true;
  });
  assert.equal((await callsTo(stack.mock, 'openai')).length, 0);
});

test('an unknown model is a 404 model_not_found', async () => {
  const u = await userWithKeys(stack.gw, ['openai']);
  await assert.rejects(sdk(stack.gw, u.api_key).chat.completions
    .create({ model: 'gpt-4o', messages: userMessage() }), (err) => {
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    return true;
  });
});

test('falls back when a provider refuses connections', async () => {
  // A port that was bound and released: nothing listens there.
  const port = await new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
  const gw = await startGateway({
    env: { ...mockProviderEnv(stack.mock), IB_GROQ_BASE_URL: `http://127.0.0.1:${port}/openai/v1` },
  });
  try {
    const u = await userWithKeys(gw, ['groq', 'deepseek']);
    const { response } = await sdk(gw, u.api_key).chat.completions
      .create({ model: 'ib/cheap', messages: userMessage() }).withResponse();
    assert.equal(response.headers.get('x-inferbridge-attempts'),
      'groq=connect_error;deepseek=200;'.slice(0, -1));
    assert.equal(response.headers.get('x-inferbridge-provider'), 'deepseek');
  } finally {
    await stopProcess(gw);
  }
});

test('the request body reaching each provider is its own dialect', async () => {
  const u = await userWithKeys(stack.gw, ['openai', 'sarvam', 'anthropic']);
  await mockScript(stack.mock, 'openai', [{ status: 500 }]);
  await mockScript(stack.mock, 'sarvam', [{ status: 500 }]);
  const messages = [
    { role: 'developer', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
  ];
  const { response } = await chat(u.api_key, { messages, max_completion_tokens: 50 });
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=500;sarvam=500;anthropic=200');
  const [oa] = await callsTo(stack.mock, 'openai');
  assert.deepEqual(JSON.parse(oa.body).messages, messages, 'OpenAI gets the body as sent');
  const [sv] = await callsTo(stack.mock, 'sarvam');
  const svBody = JSON.parse(sv.body);
  assert.equal(svBody.messages[0].role, 'system');
  assert.equal(svBody.max_tokens, 50);
  assert.equal(sv.headers['api-subscription-key'], 'sk-test-sarvam-0123456789abcdef');
  const [an] = await callsTo(stack.mock, 'anthropic');
  const anBody = JSON.parse(an.body);
  assert.equal(an.headers['x-api-key'], 'sk-test-anthropic-0123456789abcdef');
  assert.equal(an.headers['anthropic-version'], '2023-06-01');
  assert.equal(anBody.max_tokens, 50);
  assert.equal(anBody.messages.length, 1);
  assert.equal(anBody.messages[0].role, 'user');
  assert.ok(JSON.stringify(anBody.messages[0].content).includes('Hi'));
  assert.ok(JSON.stringify(anBody.system).includes('Be brief.'));
});
