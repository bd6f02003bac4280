// POST /v1/responses through the official `openai` SDK, unchanged: translated to chat completions
// for Anthropic and the OpenAI-compatible providers, forwarded natively (byte for byte but the
// model) to OpenAI; the stream helper, tool round trips, fallback before the first byte, and the
// 400s for what only OpenAI can serve.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { api, callsTo, mockReset, mockScript, sdk, startStack, userWithKeys } from './lib/stack.mjs';

let stack;
before(async () => {
  stack = await startStack({
    config: {
      providers: { openai: {}, anthropic: {}, groq: {}, deepseek: {}, together: {}, sarvam: {} },
      tiers: {
        'ib/balanced': [{ provider: 'openai', model: 'gpt-6-luna' }, { provider: 'sarvam', model: 'sarvam-105b' },
          { provider: 'anthropic', model: 'claude-haiku-4-5' }],
        't/anthropic-first': [{ provider: 'anthropic', model: 'claude-haiku-4-5' },
          { provider: 'openai', model: 'gpt-6-luna' }],
        't/no-openai': [{ provider: 'anthropic', model: 'claude-haiku-4-5' }, { provider: 'sarvam', model: 'sarvam-105b' }],
      },
    },
  });
});
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
};

async function user() {
  return userWithKeys(stack.gw, ['openai', 'anthropic', 'sarvam']);
}

/// Every event of a raw Responses stream, and the text of its output_text deltas.
async function collect(stream) {
  const events = [];
  let text = '';
  for await (const ev of stream) {
    events.push(ev);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  return { events, text };
}

test('responses.create on a tier whose first provider is Anthropic: translated, output_text, store false', async () => {
  const u = await user();
  const { data, response } = await sdk(stack.gw, u.api_key).responses
    .create({ model: 't/anthropic-first', input: 'Hello there', instructions: 'Be brief.', store: true,
      max_output_tokens: 200, metadata: { app: 'e2e' } })
    .withResponse();
  assert.equal(response.headers.get('x-inferbridge-provider'), 'anthropic');
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=200');
  assert.equal(data.object, 'response');
  assert.match(data.id, /^resp_/);
  assert.equal(data.status, 'completed');
  assert.equal(data.output_text, 'Hello from mock anthropic! You said: Hello there');
  assert.equal(data.store, false, 'nothing is kept, whatever the request asked');
  assert.equal(data.instructions, 'Be brief.');
  assert.equal(data.max_output_tokens, 200);
  assert.deepEqual(data.metadata, { app: 'e2e' });
  assert.equal(data.output[0].type, 'message');
  assert.equal(data.output[0].role, 'assistant');
  assert.ok(data.usage.input_tokens > 0 && data.usage.output_tokens > 0);
  assert.equal(data.usage.total_tokens, data.usage.input_tokens + data.usage.output_tokens);
  // What Anthropic got: the chat form translated by the existing encoder.
  const [up] = await callsTo(stack.mock, 'anthropic');
  assert.equal(up.path, '/anthropic/v1/messages');
  const sent = JSON.parse(up.body);
  assert.equal(sent.model, 'claude-haiku-4-5');
  assert.equal(sent.max_tokens, 200);
  assert.deepEqual(sent.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(sent.messages.at(-1).role, 'user');
  assert.equal(sent.store, undefined);
  assert.equal(sent.metadata, undefined);
});

test('responses.create on openai/...: forwarded natively with only the model changed', async () => {
  const u = await user();
  const raw = '{"model" : "openai/gpt-6-luna", "input":[{"role":"user","content":"caf\\u00e9 \u00e9t\u00e9"}],'
    + '\n "store": true, "metadata": {"k": "v"}, "reasoning": {"effort": "low"}, "text": {"verbosity": "low"}}';
  const r = await api(stack.gw, 'POST', '/v1/responses', { key: u.api_key, raw, headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-inferbridge-provider'), 'openai');
  assert.equal(r.json.object, 'response');
  assert.equal(r.json.store, true, 'the native answer passes through');
  const [up] = await callsTo(stack.mock, 'openai');
  assert.equal(up.path, '/openai/v1/responses');
  assert.equal(up.body, raw.replace('"openai/gpt-6-luna"', '"gpt-6-luna"'));

  const { data } = await sdk(stack.gw, u.api_key).responses
    .create({ model: 'openai/gpt-6-luna', input: 'Hello there' }).withResponse();
  assert.equal(data.output_text, 'Hello from mock openai! You said: Hello there');
});

for (const model of ['t/anthropic-first', 'openai/gpt-6-luna']) {
  test(`client.responses.stream on ${model}: deltas and finalResponse`, async () => {
    const u = await user();
    const client = sdk(stack.gw, u.api_key);
    const deltas = [];
    const types = [];
    const stream = client.responses.stream({ model, input: 'stream please' });
    stream.on('response.output_text.delta', (ev) => deltas.push(ev.delta));
    stream.on('event', (ev) => types.push(ev.type));
    const final = await stream.finalResponse();
    const who = model.startsWith('openai/') ? 'openai' : 'anthropic';
    assert.equal(final.output_text, `Hello from mock ${who}! You said: stream please`);
    assert.equal(deltas.join(''), final.output_text);
    assert.ok(deltas.length >= 2, `${deltas.length} deltas`);
    assert.equal(final.status, 'completed');
    assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done']) {
      assert.ok(types.includes(t), `${t} in ${types}`);
    }
    if (who === 'anthropic') assert.equal(final.store, false);
  });
}

for (const model of ['t/anthropic-first', 'openai/gpt-6-luna']) {
  test(`a function tool round trip on ${model}`, async () => {
    const u = await user();
    const client = sdk(stack.gw, u.api_key);
    const input = [{ role: 'user', content: 'CALL_TOOL: weather in Pune?' }];
    const first = await client.responses.create({ model, input, tools: [weatherTool] });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Pune', unit: 'c' });
    assert.ok(call.call_id);
    assert.equal(first.output_text, '');

    // Streamed too: the arguments arrive in pieces.
    const stream = client.responses.stream({ model, input, tools: [weatherTool] });
    const pieces = [];
    stream.on('response.function_call_arguments.delta', (ev) => pieces.push(ev.delta));
    const streamed = await stream.finalResponse();
    const streamedCall = streamed.output.find((o) => o.type === 'function_call');
    assert.deepEqual(JSON.parse(streamedCall.arguments), { city: 'Pune', unit: 'c' });
    assert.ok(pieces.length >= 2, `${pieces.length} pieces`);
    assert.equal(pieces.join(''), streamedCall.arguments);

    const second = await client.responses.create({
      model,
      tools: [weatherTool],
      input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c":31}' }],
    });
    assert.equal(second.output.filter((o) => o.type === 'function_call').length, 0);
    assert.match(second.output_text, /^Hello from mock (anthropic|openai)!/);
    if (model.startsWith('t/')) {
      // Anthropic got the call and its result as tool_use / tool_result blocks.
      const ups = await callsTo(stack.mock, 'anthropic');
      const sent = JSON.parse(ups.at(-1).body);
      assert.equal(sent.messages[1].content[0].type, 'tool_use');
      assert.equal(sent.messages[1].content[0].name, 'get_weather');
      assert.equal(sent.messages[2].content[0].type, 'tool_result');
      assert.equal(sent.messages[2].content[0].content, '{"temp_c":31}');
    } else {
      assert.match(second.output_text, /\{"temp_c":31\}/);
    }
  });
}

test('a streamed Responses request falls back before the first byte (503), with the attempt headers', async () => {
  const u = await user();
  await mockScript(stack.mock, 'openai', [{ status: 503 }]);
  const { data, response } = await sdk(stack.gw, u.api_key).responses
    .create({ model: 'ib/balanced', input: 'stream please', stream: true })
    .withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=503;sarvam=200');
  assert.equal(response.headers.get('x-inferbridge-provider'), 'sarvam');
  const { events, text } = await collect(data);
  assert.equal(events[0].type, 'response.created');
  assert.equal(events.at(-1).type, 'response.completed');
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.match(text, /^Hello from mock sarvam! You said: stream please/);
  assert.equal(events.at(-1).response.output[0].content[0].text, text);
});

test('a native stream that fails before content falls back to a translated provider', async () => {
  const u = await user();
  await mockScript(stack.mock, 'openai', [{ behaviour: 'inband-error-0' }]);
  const { data, response } = await sdk(stack.gw, u.api_key).responses
    .create({ model: 'ib/balanced', input: 'stream please', stream: true })
    .withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'openai=server_error;sarvam=200');
  const { text } = await collect(data);
  assert.match(text, /^Hello from mock sarvam!/);
});

test('a translated stream that fails before content falls back to OpenAI; nothing of it reaches the client', async () => {
  const u = await user();
  await mockScript(stack.mock, 'anthropic', [{ behaviour: 'inband-error-0' }]);
  const { data, response } = await sdk(stack.gw, u.api_key).responses
    .create({ model: 't/anthropic-first', input: 'stream please', stream: true })
    .withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=server_error;openai=200');
  const { events, text } = await collect(data);
  assert.equal(events.filter((e) => e.type === 'response.created').length, 1);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.match(events[0].response.id, /^resp_mock_/, 'the native stream from its first event');
  assert.match(text, /^Hello from mock openai!/);
});

for (const [model, who] of [['t/anthropic-first', 'anthropic'], ['openai/gpt-6-luna', 'openai']]) {
  test(`a failure after the commit point raises in the SDK (${who}), never a silent truncation`, async () => {
    const u = await user();
    await mockScript(stack.mock, who, [{ behaviour: 'inband-error-2' }]);
    const stream = sdk(stack.gw, u.api_key).responses.stream({ model, input: 'stream please' });
    let text = '';
    stream.on('response.output_text.delta', (ev) => { text += ev.delta; });
    await assert.rejects(stream.finalResponse(), (err) => {
      assert.ok(err instanceof OpenAI.APIError, `${err}`);
      return true;
    });
    assert.ok(text.startsWith('Hello from mock'), JSON.stringify(text));
  });
}

test('previous_response_id: a 400 that says why on a tier without OpenAI; forwarded on openai/...', async () => {
  const u = await user();
  const client = sdk(stack.gw, u.api_key);
  await assert.rejects(
    client.responses.create({ model: 't/no-openai', input: 'and then?', previous_response_id: 'resp_123' }).withResponse(),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `${err}`);
      assert.equal(err.status, 400);
      assert.match(err.message, /previous_response_id/);
      assert.match(err.message, /openai\//);
      assert.match(err.message, /send the conversation as input items/);
      assert.equal(err.headers.get('x-inferbridge-attempts'), 'anthropic=unsupported;sarvam=unsupported');
      return true;
    });
  assert.equal((await callsTo(stack.mock, 'anthropic')).length, 0);
  assert.equal((await callsTo(stack.mock, 'sarvam')).length, 0);

  const ok = await client.responses.create({ model: 'openai/gpt-6-luna', input: 'and then?', previous_response_id: 'resp_123' });
  assert.equal(ok.object, 'response');
  const [up] = await callsTo(stack.mock, 'openai');
  assert.equal(JSON.parse(up.body).previous_response_id, 'resp_123');
});

test('a built-in tool: 400 without OpenAI, skipped to OpenAI in a tier that has it, forwarded on openai/...', async () => {
  const u = await user();
  const client = sdk(stack.gw, u.api_key);
  const body = { input: 'news today?', tools: [{ type: 'web_search' }] };
  await assert.rejects(client.responses.create({ model: 't/no-openai', ...body }), (err) => {
    assert.equal(err.status, 400);
    assert.match(err.message, /web_search/);
    assert.match(err.message, /OpenAI/);
    return true;
  });
  const { data, response } = await client.responses.create({ model: 't/anthropic-first', ...body }).withResponse();
  assert.equal(response.headers.get('x-inferbridge-attempts'), 'anthropic=unsupported;openai=200');
  assert.equal(data.object, 'response');
  const [up] = await callsTo(stack.mock, 'openai');
  assert.deepEqual(JSON.parse(up.body).tools, [{ type: 'web_search' }]);
});

test('a malformed Responses body is a 400 naming the field, before any provider is called', async () => {
  const u = await user();
  const r = await api(stack.gw, 'POST', '/v1/responses', {
    key: u.api_key, body: { model: 't/anthropic-first', input: [{ type: 'function_call', name: 'f', arguments: '{}' }] },
  });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'input[0].call_id');
  assert.equal((await callsTo(stack.mock, 'anthropic')).length, 0);
});
