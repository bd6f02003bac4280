// Everything the gateway writes is valid JSON in valid UTF-8, whatever bytes an upstream sent
// (issue 13: an upstream error body holding the bytes ff fe came back raw inside the envelope,
// and a strict JSON parser rejected the whole response).
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';

import { mockReset, startStack, userWithKeys } from './lib/stack.mjs';

let stack;
let user;
before(async () => {
  stack = await startStack({
    config: {
      providers: { openai: {}, anthropic: {}, groq: {}, deepseek: {}, together: {}, sarvam: {} },
      tiers: {
        't/openai': [{ provider: 'openai', model: 'gpt-4.1-mini' }],
        't/anthropic': [{ provider: 'anthropic', model: 'claude-sonnet-4-5' }],
      },
      breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 },
    },
  });
  user = await userWithKeys(stack.gw, ['openai', 'anthropic']);
});
after(async () => { await stack?.stop(); });
beforeEach(async () => { await mockReset(stack.mock); });

const BAD = Buffer.from([0xff, 0xfe]);

/// Scripts one step whose `body` holds raw bytes (the mock reads the script without checking
/// its encoding, as an upstream would send them).
async function scriptRaw(provider, step, bodyParts) {
  const body = Buffer.concat([
    Buffer.from(JSON.stringify({ provider, steps: [{ ...step, body: '@@' }] }).split('"@@"')[0]),
    Buffer.from('"'),
    ...bodyParts.map((p) => (typeof p === 'string' ? Buffer.from(JSON.stringify(p).slice(1, -1)) : p)),
    Buffer.from('"'),
    Buffer.from(JSON.stringify({ provider, steps: [{ ...step, body: '@@' }] }).split('"@@"')[1]),
  ]);
  const r = await fetch(`${stack.mock.url}/__mock/script`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal(r.status, 200, await r.text());
}

async function rawChat(model, extra = {}) {
  const r = await fetch(`${stack.gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.api_key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
  const bytes = Buffer.from(await r.arrayBuffer());
  // A strict decoder throws on any byte sequence that is not UTF-8.
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  return { status: r.status, text };
}

test('an upstream error message with invalid UTF-8 comes back as valid JSON (U+FFFD)', async () => {
  await scriptRaw('openai', { status: 400, content_type: 'application/json' },
    ['{"error":{"message":"bad ', BAD, ' bytes","type":"invalid_request_error","param":null,"code":null}}']);
  const { status, text } = await rawChat('t/openai');
  assert.equal(status, 400);
  const body = JSON.parse(text);
  assert.equal(body.error.message, 'bad \ufffd\ufffd bytes');
});

test('the all-failed envelope quoting an upstream message stays valid', async () => {
  await scriptRaw('openai', { status: 429, content_type: 'application/json', retry_after: '3' },
    ['{"error":{"message":"slow down ', BAD, '","type":"requests","code":"rate_limit_exceeded"}}']);
  const { status, text } = await rawChat('t/openai');
  assert.equal(status, 429);
  const body = JSON.parse(text);
  assert.match(body.error.message, /openai: slow down \ufffd\ufffd/);
  assert.ok(Array.isArray(body.error.inferbridge_attempts));
});

test('a translated Anthropic message with invalid UTF-8 text is valid JSON', async () => {
  await scriptRaw('anthropic', { status: 200, content_type: 'application/json' }, [
    '{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"caf',
    Buffer.from([0xc3]), ' ok ', BAD,
    '"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}',
  ]);
  const { status, text } = await rawChat('t/anthropic');
  assert.equal(status, 200);
  assert.equal(JSON.parse(text).choices[0].message.content, 'caf\ufffd ok \ufffd\ufffd');
});

test('a translated Anthropic stream with invalid UTF-8 gives valid chunks', async () => {
  const ev = (name, data) => [`event: ${name}\ndata: `, ...data, '\n\n'];
  await scriptRaw('anthropic', { status: 200, content_type: 'text/event-stream' }, [
    ...ev('message_start', ['{"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}']),
    ...ev('content_block_start', ['{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}']),
    ...ev('content_block_delta', ['{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x', BAD, 'y"}}']),
    ...ev('content_block_stop', ['{"type":"content_block_stop","index":0}']),
    ...ev('message_delta', ['{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}']),
    ...ev('message_stop', ['{"type":"message_stop"}']),
  ]);
  const { status, text } = await rawChat('t/anthropic', { stream: true });
  assert.equal(status, 200);
  const datas = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  assert.equal(datas.at(-1), '[DONE]');
  const content = datas.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, 'x\ufffd\ufffdy');
});
