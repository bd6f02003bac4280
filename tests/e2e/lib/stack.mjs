// The system under test: the real `inferbridge` binary and the mock provider from bench/, both on
// loopback ephemeral ports, with a fresh data directory. Only the external providers are mocked.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';

import { buildDir, repoRoot, startMock, startProcess, stopProcess } from './procs.mjs';

/// Parses JSON with `//` and `/* */` comments and trailing commas, as the gateway's config
/// loader accepts it (strings are left alone).
export function parseConfigText(text) {
  let out = '';
  for (let i = 0; i < text.length; ++i) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') ++i;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2) + 1;
    } else {
      out += c;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
}

/// The shipped default configuration (config/default.json): its `providers` are the providers
/// the gateway knows, so the list below is never written out by hand.
export const DEFAULT_CONFIG = parseConfigText(
  fs.readFileSync(path.join(repoRoot, 'config', 'default.json'), 'utf8'));

export const PROVIDERS = Object.keys(DEFAULT_CONFIG.providers);

/// Where the mock serves `provider`: `/<name>` followed by the path of its shipped base URL
/// (`/groq` + `/openai/v1`), the paths bench/mock/server.cpp matches.
export function mockPrefix(provider) {
  const base = DEFAULT_CONFIG.providers[provider]?.base_url ?? 'https://x/v1';
  return `/${provider}${new URL(base).pathname.replace(/\/$/, '')}`;
}

/// The `IB_<NAME>_BASE_URL` variable of a provider, as config/load.cpp names it.
export function baseUrlVar(provider) {
  return `IB_${provider.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_BASE_URL`;
}

/// Environment pointing every shipped provider's base URL at the mock.
export function mockProviderEnv(mock) {
  const env = {};
  for (const p of PROVIDERS) {
    env[baseUrlVar(p)] = `${mock.url}${mockPrefix(p)}`;
  }
  return env;
}

export function tempDir(prefix = 'ib-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/// What every test gateway gets unless the test sets it: the suites sign up many users from
/// 127.0.0.1, so the per-address sign-up limit (`IB_SIGNUPS_PER_HOUR`) is off; the tests of that
/// limit set it themselves.
const TEST_DEFAULT_ENV = { IB_SIGNUPS_PER_HOUR: '0' };

/// Starts the gateway. `config` (an object) is written to a file and passed with --config.
export async function startGateway({ env = {}, config, dataDir } = {}) {
  const dir = dataDir ?? path.join(tempDir(), 'data');
  const args = [];
  if (config) {
    const file = path.join(path.dirname(dir), 'config.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    args.push('--config', file);
  }
  const gw = await startProcess(path.join(buildDir, 'inferbridge'), args, {
    env: { IB_LISTEN: '127.0.0.1:0', IB_DATA_DIR: dir, ...TEST_DEFAULT_ENV, ...env },
  });
  gw.dataDir = dir;
  gw.args = args;
  gw.env = env;
  return gw;
}

/// Mock + gateway wired together.
export async function startStack({ env = {}, config, mockArgs = [] } = {}) {
  const mock = await startMock(mockArgs);
  const gw = await startGateway({ env: { ...mockProviderEnv(mock), ...env }, config });
  return {
    mock,
    gw,
    async stop() {
      await stopProcess(gw);
      await stopProcess(mock);
    },
  };
}

/// Restarts a stopped (or killed) gateway with the same data dir, config and environment.
export async function restartGateway(gw) {
  const dir = gw.dataDir;
  const g = await startProcess(path.join(buildDir, 'inferbridge'), gw.args, {
    env: { IB_LISTEN: '127.0.0.1:0', IB_DATA_DIR: dir, ...TEST_DEFAULT_ENV, ...gw.env },
  });
  g.dataDir = dir;
  g.args = gw.args;
  g.env = gw.env;
  return g;
}

// -- HTTP helpers ----------------------------------------------------------------------------------

export async function api(gw, method, pathname, { key, body, headers = {}, raw } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${gw.url}${pathname}`, {
    method,
    headers: h,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

let emailCounter = 0;

/// Creates a user; returns {id, email, api_key}.
export async function signup(gw, email) {
  const e = email ?? `user${process.pid}-${++emailCounter}-${Date.now()}@example.com`;
  const r = await api(gw, 'POST', '/v1/users', { body: { email: e } });
  if (r.status !== 201) throw new Error(`signup failed: ${r.status} ${r.text}`);
  return r.json;
}

export async function addKey(gw, gatewayKey, provider, providerKey) {
  const r = await api(gw, 'POST', '/v1/keys', {
    key: gatewayKey,
    body: { provider, api_key: providerKey ?? `sk-test-${provider}-0123456789abcdef` },
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`add key failed: ${r.status} ${r.text}`);
  return r.json;
}

/// A user with keys for `providers`.
export async function userWithKeys(gw, providers) {
  const u = await signup(gw);
  for (const p of providers) await addKey(gw, u.api_key, p);
  return u;
}

/// The official OpenAI SDK pointed at the gateway (no SDK retries unless asked).
export function sdk(gw, apiKey, opts = {}) {
  return new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 20000, ...opts });
}

// -- mock control ----------------------------------------------------------------------------------

export async function mockScript(mock, provider, steps) {
  const r = await fetch(`${mock.url}/__mock/script`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ provider, steps }),
  });
  if (!r.ok) throw new Error(`mock script failed: ${r.status} ${await r.text()}`);
}

export async function mockRequests(mock) {
  return (await fetch(`${mock.url}/__mock/requests`)).json();
}

export async function mockStats(mock) {
  return (await fetch(`${mock.url}/__mock/stats`)).json();
}

export async function mockReset(mock) {
  await fetch(`${mock.url}/__mock/reset`, { method: 'POST' });
}

/// Requests the mock received for `provider` (optionally only chat calls).
export async function callsTo(mock, provider) {
  const all = await mockRequests(mock);
  return all.filter((r) => r.provider === provider && r.method === 'POST');
}

export const userMessage = (text = 'Hello there') => [{ role: 'user', content: text }];
