// Faults found by replaying other gateways' public bug reports (issue 12), each example and each
// case its audit found, through the real binary with the official SDK as the client. The mock's
// Anthropic personality refuses what the real Messages API refuses (bench/mock/wire.cpp
// `anthropic_refusal`), so without the gateway's normalisation these requests end in a 400.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { addKey, callsTo, mockReset, mockScript, sdk, signup, startStack, userMessage, userWithKeys } from './lib/stack.mjs';

const config = (anthropicVersion) => ({
  providers: {
    openai: { timeouts_ms: { connect: 1000, first_byte: 300, total: 5000 } },
    anthropic: anthropicVersion ? { anthropic_version: anthropicVersion } : {},
    groq: { timeouts_ms: { connect: 1000, first_byte: 300, total: 5000 } },
    deepseek: {}, together: {}, sarvam: {},
  },
  tiers: {
    'ib/premium': [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }, { provider: 'openai', model: 'gpt-4.1' }],
    'ib/balanced': [{ provider: 'openai', model: 'gpt-4.1-mini' }, { provider: 'sarvam', model: 'sarvam-105b' }],
    't/limited': [{ provider: 'openai', model: 'gpt-4.1-mini' }, { provider: 'groq', model: 'llama-3.1-8b-instant' }],
    't/slow': [{ provider: 'openai', model: 'mock-stall-first-byte-3000' }, { provider: 'groq', model: 'mock-stall-headers-3000' }],
    't/groq': [{ provider: 'groq', model: 'llama-3.1-8b-instant' }],
    't/luna': [{ provider: 'openai', model: 'gpt-6-luna' }, { provider: 'groq', model: 'openai/gpt-oss-20b' }],
  },
  breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 },
});

let stack;
let user;
before(async () => {
  stack = await startStack({ config: config() });
  user = await userWithKeys(stack.gw, ['anthropic', 'openai', 'groq', 'deepseek']);
});
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

const lastBody = async (provider) => JSON.parse((await callsTo(stack.mock, provider)).at(-1).body);

async function premium(body, client = sdk(stack.gw, user.api_key)) {
  return client.chat.completions
    .create({ model: 'ib/premium', messages: userMessage('hi'), ...body })
    .withResponse();
}

// -- 1. Inputs OpenAI accepts but Anthropic refuses --------------------------------------------

describe('inputs OpenAI accepts reach Anthropic in a form it accepts', () => {
  test('temperature with top_p: only temperature goes (Claude 4.x refuse both)', async () => {
    const { data, response } = await premium({ temperature: 0.2, top_p: 0.9 });
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=200');
    assert.equal(data.object, 'chat.completion');
    const sent = await lastBody('anthropic');
    assert.equal(sent.temperature, 0.2);
    assert.equal('top_p' in sent, false);
  });

  test('function tools with parameters {} or without "type" get an object schema', async () => {
    const tools = [
      { type: 'function', function: { name: 'now', parameters: {} } },
      { type: 'function', function: { name: 'add', parameters: { properties: { a: { type: 'number' } }, required: ['a'] } } },
    ];
    const { response } = await premium({ tools });
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=200');
    const sent = await lastBody('anthropic');
    assert.deepEqual(sent.tools.map((t) => t.input_schema), [
      { type: 'object' },
      { type: 'object', properties: { a: { type: 'number' } }, required: ['a'] },
    ]);
  });

  test('tool-call ids Anthropic refuses are rewritten, distinct ids stay distinct', async () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const messages = [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: null, tool_calls: [
        { id: 'functions.f:0', type: 'function', function: { name: 'f', arguments: '{}' } },
        { id: 'functions_f_0', type: 'function', function: { name: 'f', arguments: '{}' } },
      ] },
      { role: 'tool', tool_call_id: 'functions.f:0', content: 'one' },
      { role: 'tool', tool_call_id: 'functions_f_0', content: 'two' },
    ];
    const { response } = await premium({ messages, tools });
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=200');
    const sent = await lastBody('anthropic');
    const ids = sent.messages[1].content.map((b) => b.id);
    assert.equal(new Set(ids).size, 2);
    for (const id of ids) assert.match(id, /^[a-zA-Z0-9_-]+$/);
    assert.deepEqual(sent.messages[2].content.map((b) => b.tool_use_id), ids);
  });

  test('image/jpg, blank text parts, blank and duplicate stop sequences are normalised', async () => {
    const messages = [
      { role: 'system', content: '   ' },
      { role: 'user', content: [
        { type: 'text', text: ' ' },
        { type: 'text', text: 'what is this?' },
        { type: 'image_url', image_url: { url: 'data:image/jpg;base64,/9j/4AAQ' } },
      ] },
      { role: 'assistant', content: '' },
      { role: 'user', content: 'and?' },
    ];
    const { response } = await premium({ messages, stop: ['  ', 'END', 'END'] });
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=200');
    const sent = await lastBody('anthropic');
    assert.equal(sent.system, undefined);
    assert.deepEqual(sent.stop_sequences, ['END']);
    assert.equal(sent.messages.length, 1);  // the empty assistant turn is gone; user turns merged
    const image = sent.messages[0].content.find((b) => b.type === 'image');
    assert.equal(image.source.media_type, 'image/jpeg');
  });

  test('no faithful mapping: a clear 400 naming the field, or the next provider of the tier', async () => {
    const audio = [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }];
    // In the tier: Anthropic cannot take audio, OpenAI next in the tier answers.
    const { response } = await premium({ messages: audio });
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=unsupported;openai=200');
    assert.equal((await callsTo(stack.mock, 'anthropic')).length, 0);
    // Anthropic alone: 400 naming the field, nothing sent upstream.
    const client = sdk(stack.gw, user.api_key);
    await assert.rejects(
      client.chat.completions.create({ model: 'anthropic/claude-sonnet-4-5', messages: audio }),
      (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.param, 'messages[0].content[0].type');
        assert.match(err.message, /input_audio/);
        return true;
      });
    // A tool message answering no tool call: OpenAI refuses it too; named, not forwarded.
    await assert.rejects(
      client.chat.completions.create({
        model: 'anthropic/claude-sonnet-4-5',
        messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'call_9', content: 'r' }],
      }),
      (err) => {
        assert.equal(err.status, 400);
        assert.equal(err.param, 'messages[1].tool_call_id');
        return true;
      });
    assert.equal((await callsTo(stack.mock, 'anthropic')).length, 0);
  });
});

test('anthropic-version 2026-10-21 in the config: no sampling parameters are sent', async () => {
  const s = await startStack({ config: config('2026-10-21') });
  try {
    const u = await userWithKeys(s.gw, ['anthropic']);
    const { response } = await sdk(s.gw, u.api_key).chat.completions
      .create({ model: 'ib/premium', messages: userMessage('hi'), temperature: 0.7, top_p: 0.5 })
      .withResponse();
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=200');
    const call = (await callsTo(s.mock, 'anthropic')).at(-1);
    assert.equal(call.headers['anthropic-version'], '2026-10-21');
    const sent = JSON.parse(call.body);
    assert.equal('temperature' in sent, false);
    assert.equal('top_p' in sent, false);
  } finally {
    await s.stop();
  }
});

// -- 4. Provider rules drift ----------------------------------------------------------------------

describe('provider rules as documented on 2026-11-30', () => {
  // A thinking-mode tool loop: the assistant turn carries reasoning_content and tool_calls.
  const loop = [
    { role: 'user', content: 'What time is it in Pune?' },
    { role: 'assistant', content: null, reasoning_content: 'I should call the clock tool.',
      tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'clock', arguments: '{"city":"Pune"}' } }] },
    { role: 'tool', tool_call_id: 'call_0', content: '14:05' },
  ];
  const tools = [{ type: 'function', function: { name: 'clock', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

  test('DeepSeek thinking mode gets reasoning_content back, unchanged', async () => {
    const { response } = await sdk(stack.gw, user.api_key).chat.completions
      .create({ model: 'deepseek/deepseek-v4-pro', messages: loop, tools }).withResponse();
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'deepseek=200');
    const sent = await lastBody('deepseek');
    assert.equal(sent.messages[1].reasoning_content, 'I should call the clock tool.');
  });

  test('Groq, which refuses reasoning_content, does not get it', async () => {
    const { response } = await sdk(stack.gw, user.api_key).chat.completions
      .create({ model: 't/groq', messages: loop, tools }).withResponse();
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'groq=200');
    const sent = await lastBody('groq');
    assert.equal('reasoning_content' in sent.messages[1], false);
    assert.equal(sent.messages[1].tool_calls[0].id, 'call_0');
  });

  test('OpenAI reasoning models: temperature/top_p dropped unless reasoning_effort is "none"', async () => {
    const client = sdk(stack.gw, user.api_key);
    const { response } = await client.chat.completions
      .create({ model: 't/luna', messages: userMessage(), temperature: 0.2, top_p: 0.5 }).withResponse();
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
    let sent = await lastBody('openai');
    assert.equal('temperature' in sent, false);
    assert.equal('top_p' in sent, false);
    await client.chat.completions.create({ model: 't/luna', messages: userMessage(), temperature: 0.2, reasoning_effort: 'none' });
    sent = await lastBody('openai');
    assert.equal(sent.temperature, 0.2);
    assert.equal(sent.reasoning_effort, 'none');
    // A model outside the reasoning families keeps them.
    await client.chat.completions.create({ model: 'ib/balanced', messages: userMessage(), temperature: 0.2 });
    sent = await lastBody('openai');
    assert.equal(sent.model, 'gpt-4.1-mini');
    assert.equal(sent.temperature, 0.2);
  });
});

// -- 2. Streamed tool calls with no arguments ---------------------------------------------------

describe('a tool call with no arguments assembles to "{}" on every path', () => {
  const tools = [{ type: 'function', function: { name: 'now', description: 'the time', parameters: { type: 'object', properties: {} } } }];
  const messages = userMessage('CALL_TOOL_NOARGS please');

  for (const [name, model] of [['anthropic (translated)', 'ib/premium'], ['openai', 'openai/gpt-4.1'], ['groq (OpenAI-compatible)', 't/groq']]) {
    test(`${name}: streamed, through the SDK's stream helper`, async () => {
      const runner = sdk(stack.gw, user.api_key).chat.completions.stream({ model, messages, tools });
      const final = await runner.finalChatCompletion();
      const call = final.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, 'now');
      assert.equal(call.function.arguments, '{}');
      assert.deepEqual(JSON.parse(call.function.arguments), {});
      assert.equal(final.choices[0].finish_reason, 'tool_calls');
    });

    test(`${name}: streamed with create(), assembled by hand`, async () => {
      const stream = await sdk(stack.gw, user.api_key).chat.completions.create({ model, messages, tools, stream: true });
      let args = '';
      for await (const chunk of stream) {
        for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) args += tc.function?.arguments ?? '';
      }
      assert.deepEqual(JSON.parse(args), {});
    });

    test(`${name}: not streamed`, async () => {
      const res = await sdk(stack.gw, user.api_key).chat.completions.create({ model, messages, tools });
      assert.deepEqual(JSON.parse(res.choices[0].message.tool_calls[0].function.arguments), {});
    });
  }
});

// -- 3. The final answer tells the SDK the right thing ------------------------------------------

describe('final answers', () => {
  test('the only keyed provider answers 429: 429 with its Retry-After and message, retriable', async () => {
    const u = await userWithKeys(stack.gw, ['openai']);
    await mockScript(stack.mock, 'openai', [{ status: 429, retry_after: '7' }]);
    await assert.rejects(
      sdk(stack.gw, u.api_key).chat.completions.create({ model: 'ib/balanced', messages: userMessage() }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, `got ${err.status}`);
        assert.equal(err.code, 'rate_limited');
        assert.equal(err.headers.get('retry-after'), '7');
        assert.equal(err.headers.get('x-should-retry'), null);
        assert.match(err.message, /openai: Rate limit reached for gpt-4\.1-mini/);
        assert.equal(err.headers.get('x-inferbridge-attempts'), 'openai=429;sarvam=no_key');
        return true;
      });
  });

  test('the SDK retries after Retry-After and succeeds once the rate limit passes', async () => {
    const u = await userWithKeys(stack.gw, ['openai']);
    await mockScript(stack.mock, 'openai', [{ status: 429, retry_after: '1' }]);
    const { data, response } = await sdk(stack.gw, u.api_key, { maxRetries: 1 }).chat.completions
      .create({ model: 'ib/balanced', messages: userMessage() }).withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
    assert.equal((await callsTo(stack.mock, 'openai')).length, 2);
  });

  test('every provider rate-limited, one now and one cooling down: 429 with the soonest end', async () => {
    const u = await userWithKeys(stack.gw, ['openai', 'groq']);
    await mockScript(stack.mock, 'groq', [{ status: 429, retry_after: '30' }]);
    // First request: groq is not reached (openai answers); make groq cool down via a direct call.
    await assert.rejects(sdk(stack.gw, u.api_key).chat.completions
      .create({ model: 'groq/llama-3.1-8b-instant', messages: userMessage() }), (err) => err.status === 429);
    await mockScript(stack.mock, 'openai', [{ status: 429, retry_after: '5' }]);
    await assert.rejects(
      sdk(stack.gw, u.api_key).chat.completions.create({ model: 't/limited', messages: userMessage() }),
      (err) => {
        assert.equal(err.status, 429);
        assert.equal(err.headers.get('x-inferbridge-attempts'), 'openai=429;groq=cooldown');
        assert.equal(err.headers.get('retry-after'), '5');
        assert.equal(err.headers.get('x-should-retry'), null);
        return true;
      });
  });

  test('a rate limit beside a server error is still 502, not retried by the SDK', async () => {
    const u = await userWithKeys(stack.gw, ['openai', 'groq']);
    await mockScript(stack.mock, 'openai', [{ status: 429, retry_after: '5' }]);
    await mockScript(stack.mock, 'groq', [{ status: 503 }]);
    await assert.rejects(
      sdk(stack.gw, u.api_key, { maxRetries: 2 }).chat.completions.create({ model: 't/limited', messages: userMessage() }),
      (err) => {
        assert.equal(err.status, 502);
        assert.equal(err.code, 'all_providers_failed');
        assert.equal(err.headers.get('x-should-retry'), 'false');
        return true;
      });
    assert.equal((await callsTo(stack.mock, 'openai')).length, 1);
  });

  test('exhausted quota: 429 insufficient_quota that the SDK does not retry', async () => {
    const u = await signup(stack.gw);
    await addKey(stack.gw, u.api_key, 'openai', 'sk-noquota-0123456789abcdef');
    await assert.rejects(
      sdk(stack.gw, u.api_key, { maxRetries: 2 }).chat.completions.create({ model: 'ib/balanced', messages: userMessage() }),
      (err) => {
        assert.equal(err.status, 429);
        assert.equal(err.code, 'insufficient_quota');
        assert.equal(err.headers.get('x-should-retry'), 'false');
        assert.match(err.message, /You exceeded your current quota/);
        return true;
      });
    assert.equal((await callsTo(stack.mock, 'openai')).length, 1);
  });

  test('every key rejected: 424 provider_key_rejected with the upstream words', async () => {
    const u = await signup(stack.gw);
    await addKey(stack.gw, u.api_key, 'openai', 'sk-invalid-0123456789abcdef');
    await addKey(stack.gw, u.api_key, 'sarvam', 'sk-invalid-0123456789abcdef');
    await assert.rejects(
      sdk(stack.gw, u.api_key, { maxRetries: 2 }).chat.completions.create({ model: 'ib/balanced', messages: userMessage() }),
      (err) => {
        assert.equal(err.status, 424);
        assert.equal(err.code, 'provider_key_rejected');
        assert.equal(err.headers.get('x-should-retry'), 'false');
        assert.equal(err.headers.get('x-inferbridge-attempts'), 'openai=401;sarvam=403');
        assert.match(err.message, /POST \/v1\/keys/);
        assert.match(err.message, /openai: /);
        return true;
      });
  });

  test('every provider timed out: 504 upstream_timeout', async () => {
    await assert.rejects(
      sdk(stack.gw, user.api_key, { maxRetries: 2 }).chat.completions.create({ model: 't/slow', messages: userMessage() }),
      (err) => {
        assert.equal(err.status, 504);
        assert.equal(err.code, 'upstream_timeout');
        assert.equal(err.headers.get('x-should-retry'), 'false');
        assert.equal(err.headers.get('x-inferbridge-attempts'), 'openai=first_byte_timeout;groq=first_byte_timeout');
        return true;
      });
  });
});
