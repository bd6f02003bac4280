// A real Prometheus scrapes the real gateway (issue 16): after a known mix of requests its query
// API returns the exact counter values; every PromQL expression of the shipped Grafana dashboard
// and alert rules evaluates without error over metrics /metrics exposes; promtool accepts
// /metrics, the rules and the sample scrape config. Needs Debian's `prometheus` package
// (scripts/install-deps.sh --test); without it every test here fails saying so.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { repoRoot, waitUntil } from './lib/procs.mjs';
import {
  ALERTS_FILE, DASHBOARD_FILE, SAMPLE_CONFIG_FILE, promtool, query, requireTool, startPrometheus,
  vectorByLabels,
} from './lib/prometheus.mjs';
import {
  DEFAULT_CONFIG, api, mockScript, sdk, startStack, userMessage, userWithKeys,
} from './lib/stack.mjs';

let stack;
let prom;
let client;
/// Tokens each provider reported to the client, summed: what tokens_total must say.
const tokens = {};

function countUsage(provider, usage) {
  assert.ok(usage, `${provider} reported no usage`);
  for (const [kind, n] of [['prompt', usage.prompt_tokens], ['completion', usage.completion_tokens]]) {
    const k = `${provider}|${kind}`;
    tokens[k] = (tokens[k] ?? 0) + n;
  }
}

const balanced = { model: 'ib/balanced', messages: userMessage('count me') };

before(async () => {
  requireTool('prometheus');
  requireTool('promtool');
  stack = await startStack({
    // These requests fail providers on purpose: keep the breakers closed so the mix is exact.
    config: { breaker: { consecutive_failures: 1000, min_requests: 1000, window: 1000 } },
  });
  prom = await startPrometheus({ targets: [`${stack.gw.host}:${stack.gw.port}`], ruleFiles: [ALERTS_FILE] });
  const user = await userWithKeys(stack.gw, ['openai', 'sarvam', 'anthropic']);
  client = sdk(stack.gw, user.api_key);

  // The mix. 1: success on the first provider of ib/balanced.
  const { data: ok, response: okRes } = await client.chat.completions.create(balanced).withResponse();
  assert.equal(okRes.headers.get('x-inferbridge-attempts'), 'openai=200');
  countUsage('openai', ok.usage);
  // 2: success on ib/premium (Anthropic's protocol).
  const premium = await client.chat.completions.create({ ...balanced, model: 'ib/premium' });
  countUsage('anthropic', premium.usage);
  // 3: a fallback, openai 503 → sarvam.
  await mockScript(stack.mock, 'openai', [{ status: 503 }]);
  const { data: fb, response: fbRes } = await client.chat.completions.create(balanced).withResponse();
  assert.equal(fbRes.headers.get('x-inferbridge-attempts'), 'openai=503;sarvam=200');
  countUsage('sarvam', fb.usage);
  // 4: a 400 from the provider: the request's fault, no fallback.
  await mockScript(stack.mock, 'openai', [{ status: 400 }]);
  await assert.rejects(client.chat.completions.create(balanced), (e) => e.status === 400);
  // 5: every provider fails: 502.
  for (const p of ['openai', 'sarvam', 'anthropic']) await mockScript(stack.mock, p, [{ status: 503 }]);
  await assert.rejects(client.chat.completions.create(balanced), (e) => e.status === 502);
  // 6: a stream, with usage in its last chunk.
  const stream = await client.chat.completions.create(
    { ...balanced, stream: true, stream_options: { include_usage: true } });
  let usage;
  for await (const chunk of stream) usage = chunk.usage ?? usage;
  countUsage('openai', usage);
});

after(async () => {
  await prom?.stop();
  await stack?.stop();
});

/// Polls Prometheus until `expr`, keyed by `labels`, equals `expected` exactly (a scrape every
/// second; bounded wait). On timeout the assertion shows the last answer against `expected`.
async function expectVector(expr, labels, expected) {
  let last;
  try {
    await waitUntil(async () => {
      last = await vectorByLabels(prom, expr, labels);
      return JSON.stringify(sorted(last)) === JSON.stringify(sorted(expected));
    }, { timeoutMs: 15000, intervalMs: 100, what: expr });
  } catch {
    assert.deepEqual(sorted(last), sorted(expected), `${expr} never reached the expected values`);
  }
}

const sorted = (o) => Object.fromEntries(Object.entries(o ?? {}).sort(([a], [b]) => a.localeCompare(b)));

test('Prometheus scrapes the exact request, fallback, attempt and token counts', async () => {
  await expectVector('sum by (tier, provider, code) (inferbridge_requests_total)', ['tier', 'provider', 'code'], {
    'ib/balanced|openai|200': 2,      // the success and the stream
    'ib/premium|anthropic|200': 1,
    'ib/balanced|sarvam|200': 1,      // the fallback
    'ib/balanced|openai|400': 1,      // the provider's 400 comes back as it is
    'ib/balanced|none|502': 1,        // nobody answered
  });
  await expectVector('sum by (tier, from_provider, reason) (inferbridge_fallbacks_total)',
    ['tier', 'from_provider', 'reason'], {
      'ib/balanced|openai|503': 2,    // the fallback, and the first hop of the 502
      'ib/balanced|sarvam|503': 1,    // the second hop of the 502 (the last attempt is no fallback)
    });
  await expectVector('sum by (provider, outcome) (inferbridge_upstream_attempts_total)', ['provider', 'outcome'], {
    'openai|success': 2,
    'openai|server_error': 2,
    'openai|request_rejected': 1,
    'sarvam|success': 1,
    'sarvam|server_error': 1,
    'anthropic|success': 1,
    'anthropic|server_error': 1,
  });
  await expectVector('sum by (provider, kind) (inferbridge_tokens_total)', ['provider', 'kind'], tokens);
  await expectVector('sum(inferbridge_inflight_requests)', [], { '': 0 });
  await expectVector('up{job="inferbridge"}', ['job'], { inferbridge: 1 });
});

// -- the shipped dashboard and rules ---------------------------------------------------------------

/// The dashboard's PromQL with Grafana's variables replaced as Grafana would for "All".
function grafanaToPromQL(expr) {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?(job|instance|tier)\}?/g, '.*');
}

/// Every query in the dashboard: panel targets, and template variables as PromQL
/// (`label_values(sel, label)` becomes `count by (label) (sel)`).
function dashboardQueries(dash) {
  const out = [];
  const walk = (panels) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: grafanaToPromQL(t.expr) });
      walk(p.panels);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = q.match(/^label_values\((.*),\s*(\w+)\)$/);
    assert.ok(m, `variable ${v.name}: expected label_values(selector, label), got ${q}`);
    out.push({ where: `variable ${v.name}`, expr: grafanaToPromQL(`count by (${m[2]}) (${m[1]})`), nonEmpty: true });
  }
  return out;
}

/// Metric names a PromQL expression reads (ours, the process_* series and `up`).
function metricNames(expr) {
  return [...new Set([...expr.matchAll(/\b(inferbridge_[a-z0-9_]+|process_[a-z0-9_]+|up)\b(?!\s*\()/g)].map((m) => m[1]))];
}

/// Sample names /metrics exposes, from its `# TYPE` lines (histograms: _bucket, _sum, _count).
function exposedNames(text) {
  const names = new Set(['up']);  // Prometheus adds `up` to every target
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram' || type === 'summary') {
      for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    }
  }
  return names;
}

test('the Grafana dashboard uses the datasource variable and shows the panels operators need', () => {
  const dash = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'));
  const ds = dash.templating.list.find((v) => v.name === 'datasource');
  assert.equal(ds?.type, 'datasource');
  assert.equal(ds.query, 'prometheus');
  const all = [];
  const walk = (panels) => { for (const p of panels ?? []) { all.push(p); walk(p.panels); } };
  walk(dash.panels);
  for (const p of all.filter((x) => x.type !== 'row')) {
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
    for (const t of p.targets) assert.deepEqual(t.datasource, p.datasource, `${p.title} ${t.refId}`);
  }
  const exprs = all.flatMap((p) => p.targets ?? []).map((t) => t.expr).join('\n');
  for (const needed of [
    'inferbridge_requests_total', 'code=~"5.."', 'histogram_quantile(0.5, sum by (le, tier) (rate(inferbridge_request_duration_seconds_bucket',
    'histogram_quantile(0.95', 'histogram_quantile(0.99', 'inferbridge_time_to_first_byte_seconds_bucket',
    'inferbridge_overhead_seconds_bucket', 'inferbridge_fallbacks_total', 'inferbridge_upstream_attempts_total',
    'inferbridge_circuit_state', 'inferbridge_tokens_total', 'inferbridge_inflight_requests',
    'process_resident_memory_bytes', 'process_cpu_seconds_total',
  ]) {
    assert.ok(exprs.includes(needed), `the dashboard has no query with ${needed}`);
  }
});

test('every dashboard and alert expression evaluates in Prometheus over metrics /metrics exposes', async () => {
  const metrics = (await api(stack.gw, 'GET', '/metrics')).text;
  const exposed = exposedNames(metrics);

  // The rules as Prometheus loaded them (it refuses to start on a bad rule file).
  const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()).data.groups.flatMap((g) => g.rules);
  const inFile = fs.readFileSync(ALERTS_FILE, 'utf8').match(/^\s*expr:/gm).length;
  assert.equal(rules.length, inFile, 'Prometheus loaded every rule of the file');
  const queries = [
    ...dashboardQueries(JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8'))),
    ...rules.map((r) => ({ where: `rule ${r.name}${r.labels?.tier ? ` (${r.labels.tier})` : ''}`, expr: r.query })),
  ];
  const missing = new Map();
  for (const q of queries) {
    const body = await query(prom, q.expr);
    assert.equal(body.status, 'success', `${q.where}: ${q.expr}\n${body.error}`);
    if (q.nonEmpty) assert.ok(body.data.result.length > 0, `${q.where} lists no values: ${q.expr}`);
    for (const name of metricNames(q.expr)) {
      if (!exposed.has(name)) missing.set(name, q.where);
    }
  }
  assert.deepEqual([...missing].map(([n, w]) => `${n} (${w})`), [], 'metrics the dashboard or rules use but /metrics does not expose');

  // Prometheus evaluates the rules every second: each must have run without error.
  await waitUntil(async () => {
    const now = (await (await fetch(`${prom.url}/api/v1/rules`)).json()).data.groups.flatMap((g) => g.rules);
    for (const r of now) assert.notEqual(r.health, 'err', `rule ${r.name}: ${r.lastError}`);
    return now.every((r) => r.health === 'ok');
  }, { timeoutMs: 10000, intervalMs: 100, what: 'every rule evaluated' });
});

test('the "every provider of a tier open" alerts name each shipped tier\'s providers', async () => {
  const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()).data.groups
    .flatMap((g) => g.rules).filter((r) => r.name === 'InferBridgeTierAllCircuitsOpen');
  assert.deepEqual(rules.map((r) => r.labels.tier).sort(), Object.keys(DEFAULT_CONFIG.tiers).sort());
  for (const r of rules) {
    const providers = DEFAULT_CONFIG.tiers[r.labels.tier].map((e) => e.provider);
    assert.ok(r.query.includes(`provider=~"${providers.join('|')}"`), `${r.labels.tier}: ${r.query}`);
    assert.ok(r.query.endsWith(`>= ${providers.length}`), `${r.labels.tier}: ${r.query}`);
  }
});

test('promtool accepts /metrics, the alert rules and the sample scrape config', async () => {
  const metrics = (await api(stack.gw, 'GET', '/metrics')).text;
  const m = promtool(['check', 'metrics'], metrics);
  assert.equal(m.status, 0, `promtool check metrics:\n${m.stdout}${m.stderr}`);
  const r = promtool(['check', 'rules', ALERTS_FILE]);
  assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
  // The sample names alerts.yml relative to itself: promtool checks that file too.
  const c = promtool(['check', 'config', SAMPLE_CONFIG_FILE]);
  assert.equal(c.status, 0, `promtool check config:\n${c.stdout}${c.stderr}`);
  assert.match(c.stdout, /1 rule files found/);
});

test('README explains every metric /metrics exposes', async () => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Operating InferBridge'));
  assert.ok(section.length > 0 && readme.includes('## Operating InferBridge'));
  const metrics = (await api(stack.gw, 'GET', '/metrics')).text;
  const undocumented = [...metrics.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1])
    .filter((name) => !section.includes(`\`${name}`));
  assert.deepEqual(undocumented, [], 'metrics missing from README "Operating InferBridge"');
});
