// Streaming end to end (design §4, providers.md): SSE relayed as it arrives, fallback before the
// commit point, errors after it, Anthropic translated into OpenAI chunks, tool calls both ways,
// and a client abort freeing the upstream connection.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { callsTo, mockReset, mockScript, mockStats, sdk, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

let stack;
let user;
before(async () => {
  stack = await startStack({
    config: {
      providers: {
        openai: { timeouts_ms: { connect: 1000, first_byte: 400, total: 10000 } },
        anthropic: {}, groq: {}, deepseek: {}, together: {}, sarvam: {},
      },
      tiers: {
        'ib/balanced': [{ provider: 'openai', model: 'gpt-4.1-mini' }, { provider: 'sarvam', model: 'sarvam-105b' },
          { provider: 'anthropic', model: 'claude-haiku-4-5' }],
        'ib/premium': [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }, { provider: 'openai', model: 'gpt-4.1' }],
      },
      // Keep breakers out of the way: these tests fail providers on purpose.
      breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 },
    },
  });
  user = await userWithKeys(stack.gw, ['openai', 'sarvam', 'anthropic', 'groq']);
});
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

async function collect(stream) {
  let text = '';
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  return { text, chunks };
}

async function streamChat(body) {
  return sdk(stack.gw, user.api_key).chat.completions
    .create({ model: 'ib/balanced', messages: userMessage('stream please'), stream: true, ...body })
    .withResponse();
}

test('streams through an OpenAI-protocol provider unchanged, with usage on request', async () => {
  const { data, response } = await streamChat({ stream_options: { include_usage: true } });
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=200');
  const { text, chunks } = await collect(data);
  assert.equal(text, 'Hello from mock openai! You said: stream please');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(chunks.length >= 5);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.total_tokens > 0);
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason === 'stop').length, 1);
  const [up] = await callsTo(stack.mock, 'openai');
  assert.equal(JSON.parse(up.body).stream, true);
});

test('without include_usage the client gets no usage chunk', async () => {
  const { data } = await streamChat({});
  const { chunks } = await collect(data);
  assert.ok(chunks.every((c) => c.choices.length > 0), 'a usage-only chunk was sent unasked');
});

test('streams through Anthropic, translated into OpenAI chunks', async () => {
  const { data, response } = await streamChat({ model: 'ib/premium', stream_options: { include_usage: true } });
  assert.equal(response.headers.get('x-inferbridge-provider'), 'anthropic');
  const { text, chunks } = await collect(data);
  assert.equal(text, 'Hello from mock anthropic! You said: stream please');
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason === 'stop').length, 1);
  assert.ok(chunks.at(-1).usage.prompt_tokens > 0);
  const [up] = await callsTo(stack.mock, 'anthropic');
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  assert.equal(JSON.parse(up.body).stream, true);
});

for (const [name, step, token] of [
  ['a 503', { status: 503 }, 'openai=503'],
  ['a reset before the response', { behaviour: 'reset-before' }, 'openai=reset'],
  ['an in-band error before any content', { behaviour: 'inband-error-0' }, 'openai=server_error'],
  ['a first-byte timeout', { behaviour: 'stall-first-byte-3000' }, 'openai=first_byte_timeout'],
]) {
  test(`falls back before the first byte on ${name}`, async () => {
    // A reset on a reused keep-alive connection is retried once on a fresh one: script it twice.
    await mockScript(stack.mock, 'openai', step.behaviour === 'reset-before' ? [step, step] : [step]);
    const { data, response } = await streamChat({});
    assert.equal(response.headers.get('x-inferbridge-attempts'), `${token};sarvam=200`);
    const { text } = await collect(data);
    assert.match(text, /^Hello from mock sarvam! You said: stream please/);
  });
}

for (const [name, behaviour] of [
  ['a reset', 'reset-mid-2'],
  ['an in-band error event', 'inband-error-2'],
  ['a clean close without [DONE]', 'truncate-fin'],
  ['a chunked body cut short', 'truncate-chunked'],
]) {
  test(`a failure after the commit point raises in the SDK (${name}), never a silent truncation`, async () => {
    await mockScript(stack.mock, 'openai', [{ behaviour }]);
    const { data, response } = await streamChat({});
    assert.equal(response.status, 200);
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? '';
    }, (err) => {
      assert.ok(err instanceof OpenAI.APIError, `${err}`);
      return true;
    });
    assert.ok(text.startsWith('Hello from mock'), `content before the failure: ${JSON.stringify(text)}`);
    assert.equal((await callsTo(stack.mock, 'sarvam')).length, 0, 'fell back after the commit point');
  });
}

test('an Anthropic overloaded event before content falls back; after content it raises', async () => {
  await mockScript(stack.mock, 'anthropic', [{ behaviour: 'inband-error-0' }]);
  const first = await streamChat({ model: 'ib/premium' });
  assert.equal(first.response.headers.get('x-inferbridge-attempts'), 'anthropic=server_error;openai=200');
  assert.match((await collect(first.data)).text, /^Hello from mock openai/);

  await mockScript(stack.mock, 'anthropic', [{ behaviour: 'inband-error-2' }]);
  const second = await streamChat({ model: 'ib/premium' });
  await assert.rejects(collect(second.data), (err) => err instanceof OpenAI.APIError);
});

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
  },
}];

for (const stream of [false, true]) {
  test(`tool calls round-trip through Anthropic (${stream ? 'stream' : 'non-stream'})`, async () => {
    const client = sdk(stack.gw, user.api_key);
    const messages = [{ role: 'user', content: 'What is the weather? CALL_TOOL' }];
    let message;
    if (stream) {
      const runner = client.chat.completions.stream({ model: 'anthropic/claude-sonnet-4-5', messages, tools });
      const final = await runner.finalChatCompletion();  // throws on malformed tool-call deltas
      message = final.choices[0].message;
      assert.equal(final.choices[0].finish_reason, 'tool_calls');
    } else {
      const res = await client.chat.completions.create({ model: 'anthropic/claude-sonnet-4-5', messages, tools });
      message = res.choices[0].message;
      assert.equal(res.choices[0].finish_reason, 'tool_calls');
    }
    assert.equal(message.tool_calls.length, 1);
    const call = message.tool_calls[0];
    assert.equal(call.id, 'toolu_mock_1');
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Pune', unit: 'c' });
    const [up] = await callsTo(stack.mock, 'anthropic');
    const upBody = JSON.parse(up.body);
    assert.deepEqual(upBody.tools[0].input_schema, tools[0].function.parameters);

    // The result goes back as a tool message; Anthropic receives a tool_result block.
    const followUp = [...messages, message, { role: 'tool', tool_call_id: call.id, content: '31°C, sunny' }];
    const done = await client.chat.completions.create({ model: 'anthropic/claude-sonnet-4-5', messages: followUp, tools });
    assert.equal(done.choices[0].finish_reason, 'stop');
    const second = (await callsTo(stack.mock, 'anthropic'))[1];
    const sent = JSON.parse(second.body).messages;
    assert.equal(sent.length, 3);
    assert.equal(sent[1].role, 'assistant');
    assert.deepEqual(sent[1].content.find((b) => b.type === 'tool_use'),
      { type: 'tool_use', id: 'toolu_mock_1', name: 'get_weather', input: { city: 'Pune', unit: 'c' } });
    assert.equal(sent[2].role, 'user');
    const result = sent[2].content.find((b) => b.type === 'tool_result');
    assert.equal(result.tool_use_id, 'toolu_mock_1');
    assert.ok(JSON.stringify(result.content).includes('31°C, sunny'));
  });
}

test('a client abort cancels the upstream call and frees its connection', async () => {
  const before = await mockStats(stack.mock);
  await mockScript(stack.mock, 'openai', [{ behaviour: 'chunk-delay-300' }]);
  const controller = new AbortController();
  const { data } = await sdk(stack.gw, user.api_key).chat.completions
    .create({ model: 'ib/balanced', messages: userMessage('abort me'), stream: true }, { signal: controller.signal })
    .withResponse();
  // The SDK ends the iteration quietly on an abort.
  let received = 0;
  try {
    for await (const chunk of data) {
      if (chunk.choices[0]?.delta?.content) {
        received += 1;
        controller.abort();
      }
    }
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIUserAbortError || err.name === 'AbortError', `${err}`);
  }
  assert.equal(received, 1);
  await waitUntil(async () => {
    const s = await mockStats(stack.mock);
    return s.in_flight === 0 && s.connections.closed > before.connections.closed;
  }, { timeoutMs: 3000, what: 'the upstream connection to close' });
  const after = await mockStats(stack.mock);
  assert.equal(after.requests.openai, 1);
});
