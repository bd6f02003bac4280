// Newcomer check (docs/where-things-go.md, "An OpenAI-compatible provider"): a provider that is
// not built in ("acme") is added through the config alone and gets chat completions routed to it.
// The mock's plain OpenAI wire stands in for acme's server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  PROVIDERS, addKey, api, baseUrlVar, mockProviderEnv, sdk, signup, startGateway, userMessage,
} from './lib/stack.mjs';
import { startMock, stopProcess } from './lib/procs.mjs';

let mock;
let gw;

const config = {
  providers: {
    openai: { models: ['gpt-6-luna'] },
    acme: { models: ['acme-1'] },  // base_url from IB_ACME_BASE_URL
  },
  tiers: {
    'ib/acme-first': [
      { provider: 'acme', model: 'acme-1' },
      { provider: 'openai', model: 'gpt-6-luna' },
    ],
  },
};

before(async () => {
  mock = await startMock();
  gw = await startGateway({
    env: { ...mockProviderEnv(mock), [baseUrlVar('acme')]: `${mock.url}/openai/v1` },
    config,
  });
});
after(async () => {
  if (gw) await stopProcess(gw);
  if (mock) await stopProcess(mock);
});

async function acmeCalls() {
  const all = await (await fetch(`${mock.url}/__mock/requests`)).json();
  return all.filter((r) => r.method === 'POST' && r.model === 'acme-1');
}

test('acme is not a shipped provider', () => {
  assert.ok(!PROVIDERS.includes('acme'));
});

test('a configured provider is listed, keyed and routed to, directly and through a tier', async () => {
  const u = await signup(gw);
  await addKey(gw, u.api_key, 'acme', 'sk-acme-0123456789abcdef');
  const models = await api(gw, 'GET', '/v1/models', { key: u.api_key });
  assert.equal(models.status, 200);
  assert.ok(models.json.data.some((m) => m.id === 'acme/acme-1'), models.text);

  for (const model of ['acme/acme-1', 'ib/acme-first']) {
    const before = (await acmeCalls()).length;
    const { data, response } = await sdk(gw, u.api_key).chat.completions
      .create({ model, messages: userMessage() })
      .withResponse();
    assert.equal(response.headers.get('x-inferbridge-provider'), 'acme', model);
    assert.equal(response.headers.get('x-inferbridge-attempts'), 'acme=200', model);
    assert.equal(typeof data.choices[0].message.content, 'string');
    const calls = await acmeCalls();
    assert.equal(calls.length, before + 1, model);
    // The generic dialect and bearer auth, with the user's acme key.
    assert.equal(calls.at(-1).headers.authorization, 'Bearer sk-acme-0123456789abcdef');
    assert.equal(calls.at(-1).path, '/openai/v1/chat/completions');
  }
});
