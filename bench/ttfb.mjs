// Time to first byte of a streamed chat completion: direct to the mock provider versus through
// the gateway, measured in the same run with the same client (node:http, keep-alive), sequential
// requests. Prints percentiles and the gateway's added time.
//   node bench/ttfb.mjs --direct URL --gateway URL --key ib_... [--n 500]
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (v.startsWith('--') ? [...acc, [v.slice(2), a[i + 1]]] : acc), []),
);
const n = Number(args.n ?? 500);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function once(url, key, model) {
  const body = JSON.stringify({
    model, stream: true, messages: [{ role: 'user', content: 'Hello there, how are you today?' }],
  });
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = 0n;
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.on('data', () => { if (first === 0n) first = process.hrtime.bigint(); });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
        else resolve({ ttfb: Number(first - t0) / 1e6, total: Number(process.hrtime.bigint() - t0) / 1e6 });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function series(url, key, model) {
  for (let i = 0; i < 50; ++i) await once(url, key, model);  // warm-up
  const ttfb = [];
  for (let i = 0; i < n; ++i) ttfb.push((await once(url, key, model)).ttfb);
  ttfb.sort((a, b) => a - b);
  return { p50: pct(ttfb, 50), p90: pct(ttfb, 90), p99: pct(ttfb, 99) };
}

const direct = await series(args.direct, 'sk-bench-0123456789abcdef', 'gpt-4.1-mini');
const gateway = await series(args.gateway, args.key, 'ib/balanced');
const f = (x) => x.toFixed(3);
console.log(`Streamed time to first byte, ${n} sequential requests each (ms)`);
console.log('');
console.log('| path | p50 | p90 | p99 |');
console.log('|---|---|---|---|');
console.log(`| direct | ${f(direct.p50)} | ${f(direct.p90)} | ${f(direct.p99)} |`);
console.log(`| gateway | ${f(gateway.p50)} | ${f(gateway.p90)} | ${f(gateway.p99)} |`);
console.log(`| added by the gateway | ${f(gateway.p50 - direct.p50)} | ${f(gateway.p90 - direct.p90)} | ${f(gateway.p99 - direct.p99)} |`);
