// The cost of one fallback hop, and how many requests reach a dead provider before its breaker
// opens. Starts the real gateway and the mock provider (IB_BUILD_DIR, default ./build) and
// measures, with sequential keep-alive requests from one client, alternating the two paths:
//   direct    tier [sarvam]                       -> one upstream call
//   fallback  tier [openai answering 503, sarvam] -> a failed call, then the same sarvam call
// The difference of the medians is the added latency of one fallback hop (a failed attempt that
// answers at once, the decision, the next call). Then, with the default breaker settings, it
// sends requests to a tier whose first provider refuses connections and counts the attempts that
// reached it before its breaker opened.
//   node bench/fallback.mjs [--n 1000]
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
process.env.IB_BUILD_DIR ??= path.join(here, '..', 'build');
const { startStack, userWithKeys, startGateway, mockProviderEnv } = await import('../tests/e2e/lib/stack.mjs');
const { stopProcess } = await import('../tests/e2e/lib/procs.mjs');

const nArg = process.argv.indexOf('--n');
const n = nArg > 0 ? Number(process.argv[nArg + 1]) : 1000;
if (!Number.isInteger(n) || n < 1) {
  console.error('usage: node bench/fallback.mjs [--n COUNT]');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(url, key, model) {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello there' }] });
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
        status: res.statusCode,
        attempts: res.headers['x-inferbridge-attempts'],
      }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const summary = (ms) => {
  ms.sort((a, b) => a - b);
  return { p50: pct(ms, 50), p90: pct(ms, 90), p99: pct(ms, 99) };
};

// The two paths alternate request by request, after a warm-up of both, so that drift over the
// run (warming caches, CPU frequency, other load) affects both series alike.
async function interleaved(gw, key, paths) {
  const url = `${gw.url}/v1/chat/completions`;
  for (let i = 0; i < 100; ++i) for (const p of paths) await post(url, key, p.model);
  const ms = paths.map(() => []);
  for (let i = 0; i < n; ++i) {
    for (const [j, p] of paths.entries()) {
      const r = await post(url, key, p.model);
      if (r.attempts !== p.expect) throw new Error(`${p.model}: attempts ${r.attempts}, expected ${p.expect}`);
      ms[j].push(r.ms);
    }
  }
  return ms.map(summary);
}

const stack = await startStack({
  config: {
    providers: { openai: {}, anthropic: {}, groq: {}, deepseek: {}, together: {}, sarvam: {} },
    tiers: {
      't/direct': [{ provider: 'sarvam', model: 'sarvam-30b' }],
      't/fallback': [{ provider: 'openai', model: 'mock-status-503' }, { provider: 'sarvam', model: 'sarvam-30b' }],
    },
    // Keep the failing provider's breaker closed: every request pays the fallback hop.
    breaker: { consecutive_failures: 1000000, min_requests: 100000, window: 100000 },
  },
});
const f = (x) => x.toFixed(3);
try {
  const u = await userWithKeys(stack.gw, ['openai', 'sarvam']);
  const [direct, fallback] = await interleaved(stack.gw, u.api_key, [
    { model: 't/direct', expect: 'sarvam=200' },
    { model: 't/fallback', expect: 'openai=503;sarvam=200' },
  ]);
  console.log(`Fallback hop, ${n} sequential requests each, the two paths alternating (ms, client-observed)`);
  console.log('');
  console.log('| path | p50 | p90 | p99 |');
  console.log('|---|---|---|---|');
  console.log(`| direct (sarvam) | ${f(direct.p50)} | ${f(direct.p90)} | ${f(direct.p99)} |`);
  console.log(`| fallback (openai 503 -> sarvam) | ${f(fallback.p50)} | ${f(fallback.p90)} | ${f(fallback.p99)} |`);
  console.log(`| added by one fallback hop | ${f(fallback.p50 - direct.p50)} | ${f(fallback.p90 - direct.p90)} | ${f(fallback.p99 - direct.p99)} |`);
} finally {
  await stack.stop();
}

// A dead provider under the default breaker: count attempts until it is skipped.
const dead = await new Promise((resolve) => {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
});
const mock2 = await startStack();
const gw = await startGateway({
  env: { ...mockProviderEnv(mock2.mock), IB_GROQ_BASE_URL: `http://127.0.0.1:${dead}/openai/v1` },
});
try {
  const u = await userWithKeys(gw, ['groq', 'deepseek']);
  let reached = 0;
  for (let i = 0; i < 20; ++i) {
    const r = await post(`${gw.url}/v1/chat/completions`, u.api_key, 'ib/cheap');
    if (r.attempts.startsWith('groq=connect_error')) reached += 1;
  }
  console.log('');
  console.log(`Sequential requests that reached a dead provider before its breaker opened (default breaker): ${reached} of 20`);
} finally {
  await stopProcess(gw);
  await mock2.stop();
}
