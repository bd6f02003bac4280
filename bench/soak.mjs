// The soak scenario of issue 18 ("Hardening"): the real gateway and the mock provider on
// loopback, a tier of two providers whose first one fails 10 % of its calls at random (5xx
// statuses, connection resets, stalls beyond its first-byte timeout: the mock's random-fault mode,
// `POST /__mock/chaos`), and a steady open-loop load (a fixed request rate, streamed and
// non-streamed alternately, several users) for the whole duration. It reports:
//   - client-visible errors (any non-200, a stream without `[DONE]` or with an error event, a
//     body that is not a completion, a socket error or a client timeout): must be 0, since the
//     second provider of the tier is always healthy;
//   - the gateway's RSS over time (VmRSS from /proc/<pid>/status every --sample seconds) and the
//     slope of its least-squares line after the warm-up, in KiB/min;
//   - the gateway's open fds (/proc/<pid>/fd) before the load, after the warm-up and at the end;
//   - its CPU µs per request (utime + stime of all its threads, /proc/<pid>/stat) after warm-up;
//   - fallbacks and upstream attempts from its /metrics, and the faults the mock injected.
// Markdown on stdout, progress on stderr, everything as JSON in bench/results/soak-<stamp>.json.
// Builds nothing: IB_BUILD_DIR (default ./build) must hold inferbridge and bench/mock_provider.
// Exits 1 when a client saw an error, 0 otherwise.
//   node bench/soak.mjs [--minutes 5] [--rate 20] [--users 4] [--fault-rate 0.1]
//                       [--warmup SECONDS (min(60, a fifth of the run))] [--sample SECONDS (5)]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
process.env.IB_BUILD_DIR ??= path.join(root, 'build');
const buildDir = path.resolve(process.env.IB_BUILD_DIR);

// -- arguments --------------------------------------------------------------------------------------

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node bench/soak.mjs [--minutes 5] [--rate 20] [--users 4] [--fault-rate 0.1]\n'
    + '                         [--warmup SECONDS] [--sample SECONDS]');
  process.exit(2);
}
const opts = { minutes: 5, rate: 20, users: 4, 'fault-rate': 0.1, warmup: -1, sample: 5 };
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, '');
  const v = Number(process.argv[i + 1]);
  if (!(name in opts) || !Number.isFinite(v) || v < 0) usage(`bad argument: ${process.argv.slice(i, i + 2).join(' ')}`);
  opts[name] = v;
}
if (opts.minutes <= 0 || opts.rate <= 0 || opts.users < 1 || opts['fault-rate'] > 1 || opts.sample <= 0) usage();
const durationMs = opts.minutes * 60_000;
const warmupMs = opts.warmup >= 0 ? opts.warmup * 1000 : Math.min(60_000, durationMs / 5);
if (warmupMs >= durationMs) usage('--warmup must be shorter than the run');

for (const f of [path.join(buildDir, 'inferbridge'), path.join(buildDir, 'bench', 'mock_provider')]) {
  if (!fs.existsSync(f)) {
    console.error(`${f} is missing. Build it first (from the repo root):\n`
      + `  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DIB_BUILD_TESTS=OFF\n`
      + '  cmake --build build -j2 --target inferbridge mock_provider\n'
      + '(or point IB_BUILD_DIR at a build directory that has them)');
    process.exit(2);
  }
}

const { startStack, userWithKeys } = await import('../tests/e2e/lib/stack.mjs');
const { waitUntil } = await import('../tests/e2e/lib/procs.mjs');
const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);

// -- the scenario ---------------------------------------------------------------------------------

const FAILING = 'groq';
const HEALTHY = 'deepseek';
const TIER = 'soak/two';
// The failing provider's deadlines are short so that a stall costs little; each stall fault holds
// its answer well beyond the first-byte timeout. The healthy provider keeps the same deadlines.
const TIMEOUTS = { connect: 1000, first_byte: 400, total: 5000 };
const STALL_MS = 2000;
const FAULTS = [
  { status: 500 },
  { status: 502 },
  { status: 503 },
  'reset-before',             // RST after reading the request, before a byte of the answer
  'reset-mid-0',              // headers (and for a stream the role chunk) sent, then RST
  `stall-headers-${STALL_MS}`,    // no answer at all until long after first_byte
  `stall-first-byte-${STALL_MS}`, // headers at once, the first body byte long after first_byte
];
const CLIENT_TIMEOUT_MS = 30_000;
const RECORDS_PER_USER = 100;
const IDLE_MS = 5000;  // the window in which the idle gateway's CPU is measured

const config = {
  providers: {
    [FAILING]: { models: ['mock-ok'], timeouts_ms: TIMEOUTS },
    [HEALTHY]: { models: ['mock-ok'], timeouts_ms: TIMEOUTS },
  },
  tiers: { [TIER]: [{ provider: FAILING, model: 'mock-ok' }, { provider: HEALTHY, model: 'mock-ok' }] },
  limits: { request_timeout_ms: 15_000 },
  // Each user's request log is trimmed to its newest records, so the log (LMDB, mapped: part of
  // the RSS) stops growing once the warm-up has filled it, and any later growth is a leak.
  request_log: { max_records_per_user: RECORDS_PER_USER },
  log: { level: 'warn' },
};

// -- /proc ----------------------------------------------------------------------------------------

const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
/// VmRSS and its parts in KiB: anon (heap, stacks: where a leak shows) and file (mapped files,
/// such as LMDB's data.mdb, which grows with the request log).
function rssParts(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { kib: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}
const rssKiB = (pid) => rssParts(pid).kib;
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
/// utime + stime of every thread of `pid`, in µs.
function cpuMicros(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / HZ;  // fields 14 and 15 of stat(5)
}
/// What the fds point at, grouped ("socket", "anon_inode:[eventfd]", a path, ...).
function fdKinds(pid) {
  const kinds = {};
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let t;
    try { t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const k = t.startsWith('socket:') ? 'socket' : t.startsWith('pipe:') ? 'pipe' : t;
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  return kinds;
}

/// The bytes allocated on disk to the files under `dir`.
function diskBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? diskBytes(p) : fs.statSync(p).blocks * 512;
  }
  return n;
}

/// Connections in state `ESTABLISHED` in /proc/net/tcp{,6} whose local port is `local` (clients
/// of a server listening there) or whose remote port is `remote` (connections to that server).
function established({ local, remote }) {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '01') continue;
      const lp = parseInt(f[1].split(':')[1], 16);
      const rp = parseInt(f[2].split(':')[1], 16);
      if ((local !== undefined && lp === local) || (remote !== undefined && rp === remote)) n += 1;
    }
  }
  return n;
}

/// Least-squares slope and intercept of ys over xs.
function regression(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; ++i) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const r2 = sxx > 0 && syy > 0 ? (sxy * sxy) / (sxx * syy) : 0;
  return { slope, intercept: my - slope * mx, r2 };
}

// -- /metrics -------------------------------------------------------------------------------------

/// The samples of `name` in a Prometheus text exposition, as [{labels, value}].
function samples(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

async function metricsText(gw) {
  const r = await fetch(`${gw.url}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return r.text();
}

// -- the load -------------------------------------------------------------------------------------

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/// One chat through the gateway. Resolves to {ok, ms, status, attempts, why} and never rejects.
function chat(gw, key, stream, n) {
  const body = JSON.stringify({
    model: TIER,
    stream,
    messages: [{ role: 'user', content: `soak request ${n}` }],
  });
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (r) => {
      if (!settled) {
        settled = true;
        resolve({ ms: performance.now() - t0, ...r });
      }
    };
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      agent,
      timeout: CLIENT_TIMEOUT_MS,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        authorization: `Bearer ${key}`,
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('error', (e) => done({ ok: false, status: res.statusCode, why: `response: ${e.code ?? e.message}` }));
      res.on('aborted', () => done({ ok: false, status: res.statusCode, why: 'response aborted' }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const attempts = res.headers['x-inferbridge-attempts'];
        const base = { status: res.statusCode, attempts };
        if (res.statusCode !== 200) {
          done({ ...base, ok: false, why: `status ${res.statusCode}: ${text.slice(0, 200)}` });
        } else if (stream) {
          const events = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
          const errorEvent = events.find((e) => e.includes('"error"'));
          if (errorEvent) done({ ...base, ok: false, why: `stream error event: ${errorEvent.slice(0, 200)}` });
          else if (events.at(-1) !== '[DONE]') done({ ...base, ok: false, why: 'stream without [DONE]' });
          else if (!events.some((e) => e.includes('"content"'))) done({ ...base, ok: false, why: 'stream without content' });
          else done({ ...base, ok: true });
        } else {
          let j;
          try { j = JSON.parse(text); } catch { /* checked below */ }
          if (typeof j?.choices?.[0]?.message?.content === 'string') done({ ...base, ok: true });
          else done({ ...base, ok: false, why: `not a completion: ${text.slice(0, 200)}` });
        }
      });
    });
    req.on('timeout', () => { req.destroy(new Error(`client timeout ${CLIENT_TIMEOUT_MS} ms`)); });
    req.on('error', (e) => done({ ok: false, why: `request: ${e.code ?? e.message}` }));
    req.end(body);
  });
}

// -- run ------------------------------------------------------------------------------------------

const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
const stack = await startStack({ config, env: { IB_LOG_LEVEL: 'warn' } });
let stopping = false;
const stopAll = async () => {
  if (stopping) return;
  stopping = true;
  agent.destroy();
  await stack.stop();
};
process.on('SIGINT', () => { stopAll().finally(() => process.exit(130)); });

const { gw, mock } = stack;
const pid = gw.proc.pid;
const result = {
  started: new Date().toISOString(),
  options: { ...opts, warmup_s: warmupMs / 1000 },
  scenario: { tier: TIER, failing: FAILING, healthy: HEALTHY, timeouts_ms: TIMEOUTS, faults: FAULTS },
};
let exitCode = 0;
try {
  const users = [];
  for (let i = 0; i < opts.users; ++i) users.push(await userWithKeys(gw, [FAILING, HEALTHY]));
  const chaos = await fetch(`${mock.url}/__mock/chaos`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ provider: FAILING, rate: opts['fault-rate'], faults: FAULTS, seed: 18 }),
  });
  if (!chaos.ok) throw new Error(`the mock refused its random-fault mode: ${chaos.status} ${await chaos.text()}`);

  // Counted with no client connection open (fetch keeps its sockets ~4 s), so the start and the
  // end counts hold the same kinds of fds: the gateway's own and its upstream pool's.
  const noClients = (what) => waitUntil(() => established({ local: gw.port }) === 0,
    { timeoutMs: 20_000, intervalMs: 200, what });
  await noClients('setup connections to the gateway closed');
  const fdsStart = fdCount(pid);
  const fdKindsStart = fdKinds(pid);
  const upstreamStart = established({ remote: mock.port });
  const rssStart = rssKiB(pid);
  const diskStart = diskBytes(gw.dataDir);
  // The idle cost (actor scheduler, timers), to tell it apart from the cost of requests.
  const idle0 = { t: performance.now(), cpu: cpuMicros(pid) };
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idleUsPerS = (cpuMicros(pid) - idle0.cpu) / ((performance.now() - idle0.t) / 1000);
  log(`gateway pid ${pid}: ${fdsStart} fds, RSS ${rssStart} KiB; ${opts.rate} req/s for ${opts.minutes} min`
    + ` (${opts.users} users, warm-up ${warmupMs / 1000} s), ${opts['fault-rate'] * 100} % of ${FAILING} calls fail`);

  const t0 = performance.now();
  const rss = [];  // [{t_s, kib}]
  const errors = [];
  const latencies = { stream: [], plain: [] };
  let sent = 0;
  let finished = 0;
  let okCount = 0;
  let fellBack = 0;
  let measured = null;  // the counters at the end of the warm-up
  const inflight = new Set();
  let progress;

  const sample = () => {
    const t = (performance.now() - t0) / 1000;
    rss.push({ t_s: Math.round(t * 10) / 10, ...rssParts(pid) });
  };
  sample();
  const sampler = setInterval(sample, opts.sample * 1000);

  // Open loop: request n is sent at t0 + n / rate whatever the answers do, so a slow answer (a
  // stall, then the fallback) never lowers the offered load.
  const interval = 1000 / opts.rate;
  const total = Math.floor((durationMs / 1000) * opts.rate);
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      while (sent < total && sent * interval <= now) {
        const n = sent++;
        const stream = n % 2 === 1;
        const p = chat(gw, users[n % users.length].api_key, stream, n).then((r) => {
          finished += 1;
          if (r.ok) {
            okCount += 1;
            (stream ? latencies.stream : latencies.plain).push(r.ms);
            if (r.attempts?.includes(';')) fellBack += 1;
          } else {
            errors.push({ n, stream, at_s: Math.round((performance.now() - t0) / 100) / 10, ...r });
            if (errors.length <= 5) log(`client-visible error on request ${n} (${stream ? 'stream' : 'plain'}): ${r.why} attempts=${r.attempts}`);
          }
          inflight.delete(p);
        });
        inflight.add(p);
      }
      if (measured === null && now >= warmupMs) {
        measured = { at_ms: now, t: performance.now(), finished, cpu_us: cpuMicros(pid), fds: fdCount(pid), fd_kinds: fdKinds(pid) };
        log(`warm-up over: ${finished} answered, ${errors.length} errors, ${measured.fds} fds`);
      }
      if (sent >= total) {
        resolve();
        return;
      }
      const next = sent * interval - (performance.now() - t0);
      setTimeout(tick, Math.max(0, Math.min(next, 50)));
    };
    progress = setInterval(() => {
      log(`${Math.round((performance.now() - t0) / 1000)} s: sent ${sent}, answered ${finished}, in flight ${inflight.size},`
        + ` errors ${errors.length}, RSS ${rss.at(-1).kib} KiB, fds ${fdCount(pid)}`);
    }, 30_000);
    tick();
  });
  clearInterval(progress);
  await Promise.all(inflight);
  const loadEnd = performance.now();
  const cpuEnd = cpuMicros(pid);
  sample();
  clearInterval(sampler);

  // The client's keep-alive connections are closed before the end count: what stays open then is
  // the gateway's own (listener, pools, LMDB, ...), comparable with the count before the load.
  const fdsAfterLoad = fdCount(pid);
  const clientsAfterLoad = established({ local: gw.port });
  agent.destroy();
  await noClients('the load\'s connections to the gateway closed');
  const fdsEnd = fdCount(pid);
  const fdKindsEnd = fdKinds(pid);
  const upstreamEnd = established({ remote: mock.port });
  const diskEnd = diskBytes(gw.dataDir);

  // Fallbacks and attempts as the gateway counted them.
  const text = await metricsText(gw);
  const fallbacks = samples(text, 'inferbridge_fallbacks_total').filter((s) => s.value > 0);
  const attempts = samples(text, 'inferbridge_upstream_attempts_total').filter((s) => s.value > 0);
  const circuit = samples(text, 'inferbridge_circuit_state');
  const mockStats = await (await fetch(`${mock.url}/__mock/stats`)).json();

  // RSS after the warm-up: the slope of its least-squares line.
  const after = rss.filter((s) => s.t_s * 1000 >= warmupMs);
  const fit = regression(after.map((s) => s.t_s / 60), after.map((s) => s.kib));
  const fitAnon = regression(after.map((s) => s.t_s / 60), after.map((s) => s.anon));
  const fitFile = regression(after.map((s) => s.t_s / 60), after.map((s) => s.file));
  const measuredRequests = finished - measured.finished;
  const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

  Object.assign(result, {
    finished_at: new Date().toISOString(),
    requests: {
      sent, answered: finished, ok: okCount, client_visible_errors: errors.length,
      answered_after_fallback: fellBack,
      achieved_rate: finished / ((loadEnd - t0) / 1000),
      latency_ms: Object.fromEntries(Object.entries(latencies).map(([k, v]) => [k, { p50: pct(v, 50), p99: pct(v, 99), max: pct(v, 100) }])),
    },
    errors: errors.slice(0, 100),
    rss: {
      start_kib: rssStart, samples: rss, after_warmup: after.length,
      slope_kib_per_min: fit.slope, r2: fit.r2,
      anon_slope_kib_per_min: fitAnon.slope, anon_r2: fitAnon.r2,
      file_slope_kib_per_min: fitFile.slope, file_r2: fitFile.r2,
      min_after_warmup_kib: Math.min(...after.map((s) => s.kib)), max_after_warmup_kib: Math.max(...after.map((s) => s.kib)),
    },
    fds: {
      start: fdsStart, after_warmup: measured.fds, after_load: fdsAfterLoad, end: fdsEnd,
      client_connections_after_load: clientsAfterLoad,
      upstream_connections_start: upstreamStart, upstream_connections_end: upstreamEnd,
      start_kinds: fdKindsStart, warmup_kinds: measured.fd_kinds, end_kinds: fdKindsEnd,
    },
    data_dir_bytes: { start: diskStart, end: diskEnd },
    cpu: {
      us_per_request_after_warmup: (cpuEnd - measured.cpu_us) / measuredRequests,
      idle_us_per_s: idleUsPerS,
      us_per_request_net_of_idle: (cpuEnd - measured.cpu_us - idleUsPerS * ((loadEnd - measured.t) / 1000)) / measuredRequests,
      requests: measuredRequests, total_us: cpuEnd, clock_ticks_per_s: HZ,
    },
    metrics: { fallbacks, attempts, circuit },
    mock: mockStats,
  });

  // -- Markdown ---------------------------------------------------------------------------------
  const f1 = (x) => x.toFixed(1);
  const lines = [];
  const out = (s = '') => lines.push(s);
  out(`### Soak: ${opts.minutes} min, ${opts.rate} req/s offered (open loop), ${opts.users} users, half streamed`);
  out();
  out(`Tier \`${TIER}\`: ${FAILING} (fails ${opts['fault-rate'] * 100} % of calls at random) → ${HEALTHY} (healthy).`
    + ` Both: timeouts_ms connect ${TIMEOUTS.connect}, first_byte ${TIMEOUTS.first_byte}, total ${TIMEOUTS.total}.`
    + ` request_log.max_records_per_user ${RECORDS_PER_USER}. Warm-up ${warmupMs / 1000} s.`);
  out();
  out('| requests | figure |');
  out('|---|---|');
  out(`| sent / answered | ${sent} / ${finished} |`);
  out(`| achieved rate | ${f1(result.requests.achieved_rate)} req/s |`);
  out(`| **client-visible errors** | **${errors.length}** |`);
  out(`| answered by the second provider (x-inferbridge-attempts has 2 entries: a fallback or a skip of an open circuit) | ${fellBack} |`);
  for (const [k, v] of Object.entries(result.requests.latency_ms)) {
    if (v.p50 !== undefined) out(`| latency ${k === 'plain' ? 'non-streamed' : 'streamed'} p50 / p99 / max | ${f1(v.p50)} / ${f1(v.p99)} / ${f1(v.max)} ms |`);
  }
  out(`| gateway CPU per request after warm-up | ${f1(result.cpu.us_per_request_after_warmup)} µs (${measuredRequests} requests; ${f1(result.cpu.us_per_request_net_of_idle)} µs net of the idle cost) |`);
  out(`| gateway CPU when idle (${IDLE_MS / 1000} s before the load) | ${f1(idleUsPerS)} µs/s |`);
  out();
  const chaosStats = mockStats.chaos?.[FAILING];
  out(`| faults injected by the mock into ${FAILING} | count |`);
  out('|---|---|');
  out(`| ${FAILING} chat calls seen by the mock | ${chaosStats?.calls ?? 'n/a'} |`);
  for (const [label, n] of Object.entries(chaosStats?.by_fault ?? {})) out(`| \`${label}\` | ${n} |`);
  out(`| all faults | ${chaosStats?.faults ?? 'n/a'} (${chaosStats ? f1((100 * chaosStats.faults) / chaosStats.calls) : 'n/a'} %) |`);
  out();
  out('| gateway /metrics | value |');
  out('|---|---|');
  for (const s of fallbacks) out(`| fallbacks_total{from_provider="${s.labels.from_provider}",reason="${s.labels.reason}"} | ${s.value} |`);
  out(`| fallbacks, all | ${fallbacks.reduce((a, s) => a + s.value, 0)} |`);
  for (const s of attempts) out(`| upstream_attempts_total{provider="${s.labels.provider}",outcome="${s.labels.outcome}"} | ${s.value} |`);
  for (const s of circuit) out(`| circuit_state{provider="${s.labels.provider}"} at the end | ${s.value} |`);
  out();
  out('| gateway resources | start | after warm-up | end |');
  out('|---|---|---|---|');
  out(`| open fds (no client connection open at start and end) | ${fdsStart} | ${measured.fds} | ${fdsEnd} |`);
  out(`| of which upstream (pooled connections to the mock) | ${upstreamStart} | | ${upstreamEnd} |`);
  out(`| open fds just after the load (${clientsAfterLoad} client connections still open) | | | ${fdsAfterLoad} |`);
  out(`| RSS KiB | ${rssStart} | ${after[0]?.kib ?? 'n/a'} | ${rss.at(-1).kib} |`);
  out(`| of which RssAnon KiB (heap, stacks) | ${rss[0].anon} | ${after[0]?.anon ?? 'n/a'} | ${rss.at(-1).anon} |`);
  out(`| of which RssFile KiB (mapped files: LMDB) | ${rss[0].file} | ${after[0]?.file ?? 'n/a'} | ${rss.at(-1).file} |`);
  out(`| data dir on disk KiB (LMDB: keys, request log) | ${Math.round(diskStart / 1024)} | | ${Math.round(diskEnd / 1024)} |`);
  out();
  out(`RSS after warm-up: ${after.length} samples every ${opts.sample} s, min ${result.rss.min_after_warmup_kib} KiB,`
    + ` max ${result.rss.max_after_warmup_kib} KiB, **slope ${f1(fit.slope)} KiB/min** (least squares, r² ${fit.r2.toFixed(2)});`
    + ` RssAnon ${f1(fitAnon.slope)} KiB/min (r² ${fitAnon.r2.toFixed(2)}), RssFile ${f1(fitFile.slope)} KiB/min (r² ${fitFile.r2.toFixed(2)}).`);
  out();
  out('RSS over time (KiB, one sample per minute):');
  out();
  // The first sample, the first of each later minute, and the last.
  const perMinute = rss.filter((s, i) => i === 0 || i === rss.length - 1
    || Math.floor(s.t_s / 60) !== Math.floor(rss[i - 1].t_s / 60));
  out(`| t (s) | ${perMinute.map((s) => s.t_s).join(' | ')} |`);
  out(`|---|${perMinute.map(() => '---').join('|')}|`);
  out(`| RSS | ${perMinute.map((s) => s.kib).join(' | ')} |`);
  out(`| RssAnon | ${perMinute.map((s) => s.anon).join(' | ')} |`);
  out(`| RssFile | ${perMinute.map((s) => s.file).join(' | ')} |`);
  if (errors.length > 0) {
    out();
    out(`First client-visible errors (of ${errors.length}):`);
    out();
    for (const e of errors.slice(0, 10)) out(`- #${e.n} at ${e.at_s} s (${e.stream ? 'stream' : 'non-stream'}): ${e.why} (attempts: ${e.attempts ?? '-'})`);
    exitCode = 1;
  }
  fs.mkdirSync(path.join(here, 'results'), { recursive: true });
  const file = path.join(here, 'results', `soak-${stamp}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2));
  out();
  out(`JSON: ${path.relative(root, file)}`);
  console.log(lines.join('\n'));
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  await stopAll();
}
process.exit(exitCode);
