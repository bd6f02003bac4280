// Anthropic's Messages API inbound (issue 15), driven by the official `@anthropic-ai/sdk` client
// unchanged, with only its key and base URL pointed at the gateway: translated for an
// OpenAI-compatible provider (text, tool use round trip, streamed and not), passed through to
// Anthropic byte for byte (thinking, cache_control, metadata, the client's anthropic-version and
// anthropic-beta), fallback before the first byte, Anthropic-shaped errors that raise the SDK's
// typed errors, count_tokens, and a failure after the commit point.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

import { callsTo, mockReset, mockScript, signup, startStack, userWithKeys } from './lib/stack.mjs';

let stack;
let user;  // keys for openai and sarvam: ib/balanced is served by OpenAI-compatible providers
let claudeUser;  // keys for anthropic only
let bothUser;  // keys for anthropic and openai
before(async () => {
  stack = await startStack({
    config: {
      providers: { openai: {}, anthropic: {}, groq: {}, deepseek: {}, together: {}, sarvam: {} },
      tiers: {
        'ib/balanced': [{ provider: 'openai', model: 'gpt-4.1-mini' }, { provider: 'sarvam', model: 'sarvam-105b' },
          { provider: 'anthropic', model: 'claude-haiku-4-5' }],
        'ib/claude-first': [{ provider: 'anthropic', model: 'claude-haiku-4-5' }, { provider: 'openai', model: 'gpt-4.1-mini' }],
      },
      // Keep breakers out of the way: these tests fail providers on purpose.
      breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 },
    },
  });
  user = await userWithKeys(stack.gw, ['openai', 'sarvam']);
  claudeUser = await userWithKeys(stack.gw, ['anthropic']);
  bothUser = await userWithKeys(stack.gw, ['anthropic', 'openai']);
});
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

/// The official client, as an application would point it at the gateway: base URL = the gateway
/// root (the SDK appends /v1/messages), key = the ib_ key (the SDK sends it as Bearer).
function claude(key, opts = {}) {
  return new Anthropic({ apiKey: key, baseURL: stack.gw.url, maxRetries: 0, timeout: 20000, ...opts });
}

const weatherTool = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
};

/// The last chat request the mock got from the gateway for `provider`, parsed.
async function lastBody(provider) {
  const calls = await callsTo(stack.mock, provider);
  assert.ok(calls.length > 0, `no call to ${provider}`);
  return JSON.parse(calls.at(-1).body);
}

// -- translated: a tier served by OpenAI-compatible providers ---------------------------------------

test('messages.create on a tier served by OpenAI: an Anthropic message back', async () => {
  const { data: msg, response } = await claude(user.api_key).messages.create({
    model: 'ib/balanced',
    max_tokens: 2048,
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: 'Hello there' }],
    metadata: { user_id: 'u-42' },
    thinking: { type: 'enabled', budget_tokens: 1024 },
    top_k: 5,
  }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-provider'), 'openai');
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.match(msg.id, /^msg_/);
  assert.equal(msg.content.length, 1);
  assert.equal(msg.content[0].type, 'text');
  assert.equal(msg.content[0].text, 'Hello from mock openai! You said: Hello there');
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0, JSON.stringify(msg.usage));
  // What OpenAI got: the chat form, with nothing Anthropic-only.
  const body = await lastBody('openai');
  assert.equal(body.model, 'gpt-4.1-mini');
  assert.deepEqual(body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }]);
  assert.equal(body.max_completion_tokens ?? body.max_tokens, 2048);
  for (const k of ['system', 'metadata', 'thinking', 'top_k', 'cache_control']) assert.equal(body[k], undefined, k);
});

test('the key as authToken (Bearer) and as x-api-key both authenticate', async () => {
  const viaToken = new Anthropic({ apiKey: null, authToken: user.api_key, baseURL: stack.gw.url, maxRetries: 0 });
  const m = await viaToken.messages.create({ model: 'ib/balanced', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(m.type, 'message');
  const r = await fetch(`${stack.gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': user.api_key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'ib/balanced', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).type, 'message');
});

test('messages.stream on a tier served by OpenAI: Anthropic events, text and final message', async () => {
  const stream = claude(user.api_key).messages.stream({
    model: 'ib/balanced', max_tokens: 64, messages: [{ role: 'user', content: 'stream please' }],
  });
  const types = [];
  let text = '';
  stream.on('streamEvent', (e) => types.push(e.type));
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(text, 'Hello from mock openai! You said: stream please');
  assert.equal(final.content[0].text, text);
  assert.equal(final.stop_reason, 'end_turn');
  assert.ok(final.usage.output_tokens > 0);
  assert.ok(final.usage.input_tokens > 0);
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(types.at(-2), 'message_delta');
  assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'));
  const body = await lastBody('openai');
  assert.equal(body.stream, true);
  assert.deepEqual(body.stream_options, { include_usage: true });
});

test('tool use round trip through OpenAI, not streamed', async () => {
  const client = claude(user.api_key);
  const first = await client.messages.create({
    model: 'ib/balanced', max_tokens: 128, tools: [weatherTool], tool_choice: { type: 'auto' },
    messages: [{ role: 'user', content: 'CALL_TOOL weather in Pune' }],
  });
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((b) => b.type === 'tool_use');
  assert.ok(use, JSON.stringify(first.content));
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Pune', unit: 'c' });
  const sentTools = (await lastBody('openai')).tools;
  assert.deepEqual(sentTools, [{ type: 'function', function: { name: 'get_weather', description: weatherTool.description, parameters: weatherTool.input_schema } }]);

  const second = await client.messages.create({
    model: 'ib/balanced', max_tokens: 128, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'CALL_TOOL weather in Pune' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '31 degrees' }, { type: 'text', text: 'and now?' }] },
    ],
  });
  assert.equal(second.stop_reason, 'end_turn');
  assert.match(second.content[0].text, /Hello from mock openai/);
  const body = await lastBody('openai');
  const assistant = body.messages.find((m) => m.role === 'assistant');
  assert.equal(assistant.tool_calls[0].id, use.id);
  assert.equal(assistant.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments), { city: 'Pune', unit: 'c' });
  const tool = body.messages.find((m) => m.role === 'tool');
  assert.deepEqual(tool, { role: 'tool', tool_call_id: use.id, content: '31 degrees' });
  assert.deepEqual(body.messages.at(-1), { role: 'user', content: 'and now?' });
});

test('tool use round trip through OpenAI, streamed', async () => {
  const client = claude(user.api_key);
  const stream = client.messages.stream({
    model: 'ib/balanced', max_tokens: 128, tools: [weatherTool],
    messages: [{ role: 'user', content: 'CALL_TOOL weather in Pune' }],
  });
  let json = '';
  stream.on('inputJson', (partial) => { json += partial; });
  const first = await stream.finalMessage();
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(use.input, { city: 'Pune', unit: 'c' });
  assert.deepEqual(JSON.parse(json), { city: 'Pune', unit: 'c' });

  const second = await client.messages.stream({
    model: 'ib/balanced', max_tokens: 128, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'CALL_TOOL weather in Pune' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: 'sunny' }] },
        { type: 'text', text: 'thanks' }] },
    ],
  }).finalMessage();
  assert.equal(second.stop_reason, 'end_turn');
  assert.match(second.content[0].text, /Hello from mock openai! You said: thanks/);
  const body = await lastBody('openai');
  assert.deepEqual(body.messages.slice(-2), [{ role: 'tool', tool_call_id: use.id, content: 'sunny' },
    { role: 'user', content: 'thanks' }]);
});

test('fallback before the first byte: OpenAI 503, Sarvam serves the stream', async () => {
  await mockScript(stack.mock, 'openai', [{ status: 503 }]);
  const { data, response } = await claude(user.api_key).messages.create({
    model: 'ib/balanced', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'fall back' }],
  }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=503;sarvam=200');
  assert.equal(response.headers.get('x-inferbridge-provider'), 'sarvam');
  let text = '';
  const types = [];
  for await (const ev of data) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  }
  assert.match(text, /^Hello from mock sarvam! You said: fall back/);
  assert.equal(types.at(-1), 'message_stop');
  assert.equal((await callsTo(stack.mock, 'openai')).length, 1);
});

test('fallback from native Anthropic (529 overloaded) to translated OpenAI, streamed', async () => {
  await mockScript(stack.mock, 'anthropic', [{ status: 529 }]);
  const { data, response } = await claude(bothUser.api_key).messages.create({
    model: 'ib/claude-first', max_tokens: 64, stream: true,
    thinking: { type: 'enabled', budget_tokens: 32 }, messages: [{ role: 'user', content: 'either' }],
  }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=529;openai=200');
  let text = '';
  for await (const ev of data) {
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  }
  assert.equal(text, 'Hello from mock openai! You said: either');
  const native = JSON.parse((await callsTo(stack.mock, 'anthropic'))[0].body);
  assert.deepEqual(native.thinking, { type: 'enabled', budget_tokens: 32 });
  assert.equal((await lastBody('openai')).thinking, undefined);
});

test('a failure after the commit point ends the stream with an error the SDK raises', async () => {
  const stream = claude(user.api_key).messages.stream({
    model: 'openai/mock-inband-error-2', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }],
  });
  let text = '';
  stream.on('text', (t) => { text += t; });
  await assert.rejects(stream.finalMessage(), (err) => {
    assert.ok(err instanceof Anthropic.APIError, String(err));
    assert.equal(err.error?.type, 'error');
    assert.equal(typeof err.error?.error?.message, 'string');
    return true;
  });
  assert.ok(text.length > 0, 'content arrived before the error');
});

// providers/adapter.cpp refuses a messages request whose `messages_facts->anthropic_only` is set
// for every provider but Anthropic (as it does for responses' `openai_only`).
test('Anthropic server tools are refused with a 400 where no provider is Anthropic', async () => {
  await assert.rejects(
    claude(user.api_key).messages.create({
      model: 'openai/gpt-4.1-mini', max_tokens: 64, messages: [{ role: 'user', content: 'news?' }],
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 2 }],
    }),
    (err) => {
      assert.ok(err instanceof Anthropic.BadRequestError, String(err));
      assert.match(err.error.error.message, /web_search_20250305/);
      return true;
    });
  assert.equal((await callsTo(stack.mock, 'openai')).length, 0);
});

// -- native: Anthropic -------------------------------------------------------------------------------

test('to Anthropic the body arrives byte for byte (model aside) with the client\'s headers', async () => {
  let sent;
  const spy = async (url, init) => { sent = init.body; return fetch(url, init); };
  const client = claude(claudeUser.api_key, { fetch: spy });
  const params = {
    model: 'anthropic/claude-haiku-4-5',
    max_tokens: 2048,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    system: [{ type: 'text', text: 'You are terse. 🦀', cache_control: { type: 'ephemeral', ttl: '1h' } }],
    metadata: { user_id: 'user-7' },
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Earlier question', cache_control: { type: 'ephemeral' } }] },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'Let me think', signature: 'EqQBCkYIBxgCKkBsig' },
        { type: 'text', text: 'Earlier answer' }] },
      { role: 'user', content: 'Now this: é "quoted" \\ slash' },
    ],
  };
  const { data: msg, response } = await client.messages.create(params, {
    headers: { 'anthropic-beta': 'interleaved-thinking-2025-05-14,extended-cache-ttl-2025-04-11' },
  }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-provider'), 'anthropic');
  assert.equal(msg.type, 'message');
  assert.match(msg.id, /^msg_mock_/, 'the upstream message, passed through');
  assert.match(msg.content[0].text, /Hello from mock anthropic/);

  const calls = await callsTo(stack.mock, 'anthropic');
  assert.equal(calls.length, 1);
  const got = calls[0];
  assert.equal(got.path, '/anthropic/v1/messages');
  assert.equal(typeof sent, 'string');
  const expected = sent.replace('"model":"anthropic/claude-haiku-4-5"', '"model":"claude-haiku-4-5"');
  assert.notEqual(expected, sent);
  assert.equal(got.body, expected);
  assert.equal(got.headers['anthropic-version'], '2026-10-21');  // the SDK's, not the gateway's
  assert.equal(got.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14,extended-cache-ttl-2025-04-11');
  assert.ok(got.headers['x-api-key'], 'the provider key goes as x-api-key');
  assert.notEqual(got.headers['x-api-key'], claudeUser.api_key);
  assert.equal(got.headers.authorization, undefined);
});

test('to Anthropic a stream passes through event by event', async () => {
  const stream = claude(claudeUser.api_key).messages.stream({
    model: 'anthropic/claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'native stream' }],
  });
  const types = [];
  stream.on('streamEvent', (e) => types.push(e.type));
  const final = await stream.finalMessage();
  assert.match(final.content[0].text, /^Hello from mock anthropic! You said: native stream/);
  assert.match(final.id, /^msg_mock_/);
  assert.equal(final.stop_reason, 'end_turn');
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
    'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  const body = await lastBody('anthropic');
  assert.equal(body.stream, true);
  assert.equal(body.stream_options, undefined);
});

test('an Anthropic error mid-stream reaches the SDK as Anthropic sent it', async () => {
  const stream = claude(claudeUser.api_key).messages.stream({
    model: 'anthropic/mock-inband-error-2', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }],
  });
  await assert.rejects(stream.finalMessage(), (err) => {
    assert.ok(err instanceof Anthropic.APIError, String(err));
    assert.equal(err.error?.error?.type, 'overloaded_error');
    assert.equal(err.type, 'overloaded_error');
    return true;
  });
});

test('count_tokens on anthropic/...; a 400 where no provider is Anthropic', async () => {
  const client = claude(claudeUser.api_key);
  const text = 'How many tokens is this?';
  const r = await client.messages.countTokens({
    model: 'anthropic/claude-haiku-4-5', system: 'Be brief.', messages: [{ role: 'user', content: text }],
  });
  assert.deepEqual(r, { input_tokens: 4 + Math.ceil((text.length + 'Be brief.'.length) / 4) });
  const got = (await callsTo(stack.mock, 'anthropic')).at(-1);
  assert.equal(got.path, '/anthropic/v1/messages/count_tokens');
  assert.equal(JSON.parse(got.body).model, 'claude-haiku-4-5');

  await assert.rejects(
    claude(user.api_key).messages.countTokens({ model: 'openai/gpt-4.1-mini', messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.BadRequestError, String(err));
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'invalid_request_error');
      assert.match(err.error.error.message, /Anthropic/);
      return true;
    });
  assert.equal((await callsTo(stack.mock, 'openai')).length, 0);
});

// -- errors in Anthropic's shape ---------------------------------------------------------------------

test('401: AuthenticationError with an authentication_error body', async () => {
  await assert.rejects(
    claude('ib_not_a_real_key').messages.create({ model: 'ib/balanced', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'authentication_error');
      return true;
    });
  const r = await fetch(`${stack.gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(r.status, 401);
  const body = await r.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'authentication_error');
  assert.match(body.error.message, /x-api-key/);
});

test('400: BadRequestError for a body the Messages API refuses', async () => {
  const client = claude(user.api_key);
  await assert.rejects(
    client.messages.create({ model: 'ib/balanced', messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.BadRequestError, String(err));
      assert.equal(err.error.error.type, 'invalid_request_error');
      assert.match(err.error.error.message, /max_tokens/);
      return true;
    });
  await assert.rejects(
    client.messages.create({ model: 'ib/balanced', max_tokens: 8, messages: [{ role: 'system', content: 'x' }] }),
    (err) => err instanceof Anthropic.BadRequestError && /messages\[0\]\.role/.test(err.error.error.message));
  assert.equal((await callsTo(stack.mock, 'openai')).length, 0);
});

test('404: NotFoundError for an unknown model', async () => {
  await assert.rejects(
    claude(user.api_key).messages.create({ model: 'claude-nonexistent', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, String(err));
      assert.equal(err.error.error.type, 'not_found_error');
      return true;
    });
});

test('a gateway 5xx after every provider failed: typed error with the attempts', async () => {
  await mockScript(stack.mock, 'openai', [{ status: 500 }]);
  await assert.rejects(
    claude(user.api_key).messages.create({ model: 'openai/gpt-4.1-mini', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.InternalServerError, String(err));
      assert.ok(err.status >= 500, String(err.status));
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, err.status === 503 ? 'overloaded_error' : 'api_error');
      assert.deepEqual(err.error.error.inferbridge_attempts.map((a) => [a.provider, a.status]), [['openai', 500]]);
      assert.equal(err.headers.get('x-inferbridge-attempts'), 'openai=500');
      return true;
    });
});

test('a provider\'s 400 comes back in Anthropic\'s shape; Anthropic\'s own error unchanged', async () => {
  await mockScript(stack.mock, 'openai', [{ status: 400 }]);
  await assert.rejects(
    claude(user.api_key).messages.create({ model: 'ib/balanced', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.BadRequestError, String(err));
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'invalid_request_error');
      return true;
    });
  await mockScript(stack.mock, 'anthropic', [{ status: 404 }]);
  await assert.rejects(
    claude(claudeUser.api_key).messages.create({ model: 'anthropic/claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, String(err));
      assert.equal(err.error.error.type, 'not_found_error');
      assert.equal(err.error.request_id !== undefined, true, 'Anthropic\'s own body, with its request_id');
      return true;
    });
});

test('a user without any key for the tier gets 424 in Anthropic\'s shape', async () => {
  const nobody = await signup(stack.gw);
  await assert.rejects(
    claude(nobody.api_key).messages.create({ model: 'ib/balanced', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.equal(err.status, 424);
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.type, 'invalid_request_error');
      assert.match(err.error.error.message, /openai/);
      return true;
    });
});
