// The load-testing harness of issue 17: one command that builds the Release binaries, starts
// everything itself on loopback and measures, in one run and side by side,
//   direct       load generator -> mock provider
//   nginx        load generator -> nginx (1 worker, keep-alive upstream pool, no access log) -> mock
//   inferbridge  load generator -> the gateway (tiers pointing at the mock) -> mock
//   other        load generator -> any gateway URL given with --other-url (its headers and body)
// Non-streamed rows are driven by wrk (-t1, bench/harness/post.lua); streamed rows and the open
// streams by bench/stream_client (C++, one thread, epoll), which timestamps every read. Per row:
// RPS, latency percentiles, latency added vs direct, CPU µs per request of the proxy process
// (utime + stime of all threads from /proc/PID/stat), peak RSS (VmHWM, reset before each row),
// errors, upstream connections accepted by the mock (pool reuse), the load generator's and the
// mock's CPU.
// Writes results.md, results.json and PNG plots (gnuplot) under bench/results/<stamp>/.
// See bench/README.md ("harness") for the options and how to read the figures.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startProcess, stopProcess, waitUntil, freePort } from '../tests/e2e/lib/procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

// -- options ------------------------------------------------------------------------------------

/// Every scenario, in the order a run measures them; --only picks some (the targets of the others
/// then read "not measured").
const SCENARIOS = ['idle', 'chat-fast', 'chat-50ms', 'stream', 'fallback', 'translation', 'open-streams'];

const USAGE = `usage: bench/harness.sh [--quick] [--duration S] [--warmup S] [--hold S] [--streams N]
                        [--other-url URL [--other-header 'K: V']... [--other-body FILE]
                         [--other-name NAME] [--other-pid PID]] [--mock-port PORT]
                        [--out DIR] [--build-dir DIR] [--no-build] [--profile S]
                        [--only SCENARIO[,SCENARIO]...]
scenarios: ${SCENARIOS.join(', ')}`;

function parseOptions(argv) {
  const o = {
    quick: false, duration: undefined, warmup: undefined, hold: undefined, streams: undefined,
    otherUrl: undefined, otherHeaders: [], otherBody: undefined, otherName: 'other',
    otherPid: undefined, mockPort: 0, out: undefined, buildDir: path.join(root, 'build-bench'),
    build: true, profile: 0, only: null,
  };
  const num = (v, name) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a number, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--quick': o.quick = true; break;
      case '--duration': o.duration = Math.max(1, Math.round(num(val(), a))); break;
      case '--warmup': o.warmup = Math.round(num(val(), a)); break;
      case '--hold': o.hold = num(val(), a); break;
      case '--streams': o.streams = Math.max(4, Math.round(num(val(), a))); break;
      case '--other-url': o.otherUrl = val(); break;
      case '--other-header': o.otherHeaders.push(val()); break;
      case '--other-body': o.otherBody = val(); break;
      case '--other-name': o.otherName = val(); break;
      case '--other-pid': o.otherPid = Math.round(num(val(), a)); break;
      case '--mock-port': o.mockPort = Math.round(num(val(), a)); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--build-dir': o.buildDir = path.resolve(val()); break;
      case '--no-build': o.build = false; break;
      case '--profile': o.profile = Math.round(num(val(), a)); break;
      case '--only': {
        o.only = new Set(val().split(',').map((x) => x.trim()).filter(Boolean));
        const bad = [...o.only].filter((x) => !SCENARIOS.includes(x));
        if (bad.length) throw new Error(`--only: unknown scenario ${bad.join(', ')}\n${USAGE}`);
        break;
      }
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option '${a}'\n${USAGE}`);
    }
  }
  return o;
}

/// What each mode runs. --quick: every scenario and every path, a second each, tiny load.
function plan(o) {
  const p = o.quick
    ? { duration: 1, warmup: 0, fast: [1, 64], slow: [256], stream: [16], streamSecs: 1,
        streams: 20, hold: 1, fallbackC: 1, translationC: 64 }
    : { duration: 10, warmup: 2, fast: [1, 16, 64, 256], slow: [1, 16, 64, 256], stream: [16, 256],
        streamSecs: 10, streams: 1000, hold: 30, fallbackC: 1, translationC: 64 };
  if (o.duration !== undefined) { p.duration = o.duration; p.streamSecs = o.duration; }
  if (o.warmup !== undefined) p.warmup = o.warmup;
  if (o.hold !== undefined) p.hold = o.hold;
  if (o.streams !== undefined) p.streams = o.streams;
  return p;
}

// -- small helpers --------------------------------------------------------------------------------

const log = (...a) => process.stderr.write(`[harness] ${a.join(' ')}\n`);
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;
const pct = (sorted, p) => (sorted.length === 0 ? NaN
  : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
// A measurement window (streams held open, an idle process watched): the harness measures what
// happens during a fixed time. Never used to wait for something to happen: that is `waitUntil`.
const measureFor = (ms) => new Promise((r) => setTimeout(r, ms));

/// The path of a tool: on PATH, or in /usr/sbin (nginx, for users whose PATH lacks it); or null.
function tool(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  for (const dir of ['/usr/sbin', '/sbin']) {
    if (fs.existsSync(path.join(dir, cmd))) return path.join(dir, cmd);
  }
  return null;
}
const have = (cmd) => tool(cmd) !== null;

/// CPU time of every thread of `pid`, in µs: the sum of /proc/PID/task/*/schedstat's first field
/// (ns). /proc/PID/stat's utime + stime come in clock ticks (10 ms), too coarse for an idle
/// process's few ms a second: one tick more or less in the idle row's 3 s read as 3.3 ms/s. A
/// thread that has ended takes its time with it, and the processes measured keep theirs (the
/// gateway's, nginx's worker, the mock's). Falls back to /proc/PID/stat; NaN if `pid` is gone.
function cpuUs(pid) {
  if (!pid) return NaN;
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    }
    if (Number.isFinite(ns)) return ns / 1000;
  } catch {
    // no schedstat (a kernel without CONFIG_SCHED_INFO), or a thread gone between the two reads
  }
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e6;
  } catch {
    return NaN;
  }
}

/// The allocator a running process has mapped (ASan's, which replaces any other; jemalloc;
/// tcmalloc), else glibc's malloc: the gateway's memory figures depend on it (bench/README.md,
/// "Fifth round").
function allocatorOf(pid) {
  try {
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    if (maps.includes('libasan')) return 'asan';
    if (maps.includes('libjemalloc')) return 'jemalloc';
    if (maps.includes('libtcmalloc')) return 'tcmalloc';
    return 'glibc';
  } catch {
    return 'unknown';
  }
}

/// {rss, hwm} in KiB from /proc/PID/status.
function memKb(pid) {
  if (!pid) return { rss: NaN, hwm: NaN };
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) ?? [])[1] ?? NaN);
    return { rss: get('VmRSS'), hwm: get('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/// Resets VmHWM to the current RSS (Linux: "5" into clear_refs), so a row's peak is its own.
function resetPeak(pid) {
  if (!pid) return;
  try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* peak stays lifetime */ }
}

async function mockStats(mock) {
  const r = await fetch(`${mock.url}/__mock/stats`);
  return r.json();
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

// -- the processes ------------------------------------------------------------------------------

function build(o) {
  log(`building Release binaries in ${o.buildDir}`);
  const out = { stdio: ['ignore', process.stderr, process.stderr], cwd: root };
  run('cmake', ['-S', '.', '-B', o.buildDir, '-G', 'Ninja', '-DCMAKE_BUILD_TYPE=Release',
    '-DIB_BUILD_TESTS=OFF'], out);
  run('cmake', ['--build', o.buildDir, '-j2', '--target', 'inferbridge', 'mock_provider', 'stream_client'], out);
}

const MOCK_KEY = 'sk-bench-0123456789abcdef';

/// The gateway's configuration: every bench tier on the mock, pools as large as the load.
function gatewayConfig(https = false) {
  const provider = {
    timeouts_ms: { connect: 3000, first_byte: 120000, total: 600000 },
    pool_size: 1100,
  };
  return {
    // together (with `https`): the same mock behind nginx's TLS server, for the open-streams row
    // over HTTPS.
    providers: { openai: { ...provider }, anthropic: { ...provider }, groq: { ...provider },
      ...(https ? { together: { ...provider } } : {}) },
    tiers: {
      'bench/fast': [{ provider: 'openai', model: 'mock-ok' }],
      'bench/slow': [{ provider: 'openai', model: 'mock-ok+latency-50' }],
      'bench/stream': [{ provider: 'openai', model: STREAM_MODEL }],
      'bench/hold': [{ provider: 'openai', model: HOLD_MODEL }],
      ...(https ? { [HTTPS_HOLD_TIER]: [{ provider: 'together', model: HOLD_MODEL }] } : {}),
      'bench/groq': [{ provider: 'groq', model: 'mock-ok' }],
      'bench/fallback': [{ provider: 'openai', model: 'mock-status-503' },
        { provider: 'groq', model: 'mock-ok' }],
      'bench/anthropic': [{ provider: 'anthropic', model: 'mock-ok' }],
    },
    limits: { max_inflight_per_user: 8192, max_connections: 8192 },
    // Every fallback request must pay the hop: the failing provider's breaker stays closed.
    breaker: { consecutive_failures: 1000000, min_requests: 100000, window: 100000 },
  };
}

/// 20 content chunks, 20 ms apart (`chunks-20` needs the mock's wire.cpp to honour it; the
/// harness reports the reads it saw per stream), each stamped with the mock's send time (`stamp`:
/// `"x_mock_sent_ns"` in each chunk, from which stream_client measures each chunk's latency). A
/// mock that does not know a token gets the first of FALLBACK_STREAM_MODELS it accepts (without
/// `stamp`: no chunk latency; without `chunks-20`: its default 3 content chunks), and the log
/// says so.
let STREAM_MODEL = 'mock-ok+chunks-20+chunk-delay-20+stamp';
const FALLBACK_STREAM_MODELS = ['mock-ok+chunks-20+chunk-delay-20', 'mock-ok+chunk-delay-20'];
/// A stream that sends its head and one content chunk, then stays open until the client leaves.
const HOLD_MODEL = 'mock-ok+stall-mid-1';
/// The gateway's tier for HOLD_MODEL over HTTPS: provider `together`, whose base URL is nginx's TLS
/// server in front of the mock (a certificate made for the run, trusted through
/// IB_EXTRA_CA_FILE). Real providers are all HTTPS, and a TLS connection costs far more memory
/// than the connection itself; the plain mock would not show it.
const HTTPS_HOLD_TIER = 'bench/hold-https';

/// A self-signed certificate for 127.0.0.1 (openssl's CLI, as tests/e2e/tls.test.mjs makes
/// its own), valid for a day: { cert, key } file paths.
function makeCertificate(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync(tool('openssl'), ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr ?? r.error}`);
  return { cert, key };
}

/// nginx as the reference hop on `port`, and as a TLS terminator in front of the mock on
/// `tls.port` (`tls`: { port, cert, key }).
async function startNginx(work, mockPort, tls) {
  const dir = path.join(work, 'nginx');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  // Both servers pass everything to the mock, unbuffered, over the keep-alive pool.
  const toMock = `    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }`;
  const conf = `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  upstream mock {
    server 127.0.0.1:${mockPort};
    keepalive 1100;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
${toMock}
  }
  server {
    listen 127.0.0.1:${tls.port} ssl backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
${toMock}
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const proc = spawn(tool('nginx'), ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', path.join(dir, 'nginx.conf')],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const ready = () => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
  await waitUntil(async () => proc.exitCode === null && await ready(), { timeoutMs: 10000, what: 'nginx to listen' })
    .catch((e) => { throw new Error(`${e.message}: ${err}`); });
  // The worker is the master's only child.
  const worker = await waitUntil(() => {
    try {
      const kids = fs.readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim();
      return kids ? Number(kids.split(/\s+/)[0]) : 0;
    } catch { return 0; }
  }, { timeoutMs: 5000, what: 'the nginx worker' });
  return { proc, port, url: `http://127.0.0.1:${port}`, pid: worker, masterPid: proc.pid };
}

async function stopNginx(n) {
  if (!n || n.proc.exitCode !== null) return;
  const done = new Promise((r) => n.proc.once('exit', r));
  n.proc.kill('SIGQUIT');
  const t = setTimeout(() => n.proc.kill('SIGKILL'), 10000);
  await done;
  clearTimeout(t);
}

async function api(url, method, pathname, { key, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await fetch(`${url}${pathname}`, { method, headers, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, text, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })() };
}

// -- request bodies -------------------------------------------------------------------------------

/// A ~300 B chat request for `model`.
function chatBody(model, stream = false, size = 300) {
  const mk = (pad) => JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a concise assistant. Answer in one short paragraph.' },
      { role: 'user', content: `Summarise why connection pooling matters for a reverse proxy.${pad}` },
    ],
    max_tokens: 128,
    temperature: 0.2,
    ...(stream ? { stream: true } : {}),
  });
  const missing = size - Buffer.byteLength(mk(''));
  return mk(missing > 0 ? ' Please keep it brief.'.repeat(Math.ceil(missing / 22)).slice(0, missing) : '');
}

/// The other gateway's body for a scenario: its --other-body file (or ours) with `{model}`
/// replaced by the mock model id the scenario uses, and `stream` set as the scenario needs.
function otherBody(o, mockModel, stream) {
  if (!o.otherBody) return chatBody(mockModel, stream);
  const text = fs.readFileSync(o.otherBody, 'utf8').replaceAll('{model}', mockModel);
  const j = JSON.parse(text);
  if (stream) j.stream = true; else delete j.stream;
  return JSON.stringify(j);
}

// -- load generators ------------------------------------------------------------------------------

/// Runs wrk -t1 for `secs` with post.lua; resolves to its JSON summary plus its own CPU (µs).
function wrk({ url, body, headers, c, secs, work }) {
  const bodyFile = path.join(work, `body-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(bodyFile, body);
  // The shell waits for wrk, so its cutime + cstime are then wrk's CPU.
  const script = 'wrk "$@"; s=$?; echo "SHELL_STAT $(cat /proc/$$/stat)"; exit $s';
  const args = ['-t1', `-c${c}`, `-d${secs}s`, '--timeout', '10s', '-s',
    path.join(here, 'harness', 'post.lua'), url];
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', script, 'sh', ...args], {
      env: { ...process.env, BENCH_BODY: bodyFile, BENCH_HEADERS: headers.join('\n') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => {
      fs.rmSync(bodyFile, { force: true });
      const j = out.match(/^BENCH_JSON (.*)$/m);
      const st = out.match(/^SHELL_STAT (.*)$/m);
      if (code !== 0 || !j) {
        reject(new Error(`wrk failed (${code}): ${err}${out}`));
        return;
      }
      const res = JSON.parse(j[1]);
      if (st) {
        const f = st[1].slice(st[1].lastIndexOf(')') + 2).split(' ');
        res.cpu_us = ((Number(f[13]) + Number(f[14])) / CLK_TCK) * 1e6;
      }
      resolve(res);
    });
  });
}

/// Runs bench/stream_client: `c` keep-alive connections looping sequential streamed requests for
/// `secs`. It timestamps every read (CLOCK_MONOTONIC): time to first byte (first body bytes), to
/// the first content event, the gaps between content events, and each content event's latency
/// from the mock's send time written into it (`stamp`); resolves to its JSON (percentiles in ms,
/// its own CPU in µs from getrusage).
function streamLoad({ client, url, body, headers, c, secs, work }) {
  const bodyFile = path.join(work, `stream-body-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(bodyFile, body);
  const args = ['--url', url, '--body-file', bodyFile, '--connections', String(c), '--duration', String(secs),
    ...headers.flatMap((h) => ['--header', h])];
  return new Promise((resolve, reject) => {
    const p = spawn(client, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', (e) => { fs.rmSync(bodyFile, { force: true }); reject(e); });
    p.on('exit', (code, signal) => {
      fs.rmSync(bodyFile, { force: true });
      if (code !== 0) {
        reject(new Error(`stream_client failed (${code ?? signal}): ${err}${out}`));
        return;
      }
      // Its JSON says null where a figure has no samples; the report's arithmetic wants NaN.
      resolve(JSON.parse(out, (k, v) => (v === null ? NaN : v)));
    });
  });
}

// -- one measured row -----------------------------------------------------------------------------

/// Measures `load()` with the proxy's and the mock's CPU, the proxy's peak RSS and the
/// connections the mock accepted around it.
async function measured(sys, mock, load) {
  resetPeak(sys.pid);
  const s0 = await mockStats(mock);
  const p0 = cpuUs(sys.pid);
  const m0 = cpuUs(mock.proc.pid);
  const r = await load();
  const p1 = cpuUs(sys.pid);
  const m1 = cpuUs(mock.proc.pid);
  const s1 = await mockStats(mock);
  const mem = memKb(sys.pid);
  const n = r.requests || NaN;
  const accepted = s1.connections.accepted - s0.connections.accepted;
  return {
    ...r,
    proxy_cpu_us_per_req: sys.pid ? (p1 - p0) / n : null,
    mock_cpu_us_per_req: (m1 - m0) / n,
    loadgen_cpu_us_per_req: r.cpu_us / n,
    rss_kb: sys.pid ? mem.rss : null,
    peak_rss_kb: sys.pid ? mem.hwm : null,
    upstream_conns: accepted,
    pool_reuse_pct: 100 * (1 - accepted / n),
  };
}

async function wrkRow(ctx, { scenario, sys, c, model, label }) {
  const body = sys.body(model, false);
  const args = { url: sys.url, body, headers: sys.headers, c, work: ctx.work };
  if (ctx.p.warmup > 0) await wrk({ ...args, secs: ctx.p.warmup });
  const r = await measured(sys, ctx.mock, async () => {
    const w = await wrk({ ...args, secs: ctx.p.duration });
    const errors = w.errors.connect + w.errors.read + w.errors.write + w.errors.status + w.errors.timeout;
    const ms = (us) => us / 1000;
    return {
      requests: w.requests, errors, rps: w.requests / (w.duration_us / 1e6), cpu_us: w.cpu_us,
      latency_ms: { p50: ms(w.latency_us.p50), p90: ms(w.latency_us.p90), p99: ms(w.latency_us.p99),
        p999: ms(w.latency_us.p999) },
      bytes_per_response: w.requests ? w.bytes / w.requests : NaN,
    };
  });
  const row = { scenario, system: sys.name, label: label ?? sys.name, concurrency: c, ...r };
  log(`${scenario} ${row.label} c=${c}: ${r.rps.toFixed(0)} rps, p50 ${r.latency_ms.p50.toFixed(3)} ms, `
    + `proxy ${fmt(r.proxy_cpu_us_per_req, 1)} µs/req, errors ${r.errors}`);
  ctx.rows.push(row);
  return row;
}

async function streamRow(ctx, { scenario, sys, c }) {
  const body = sys.body(STREAM_MODEL, true);
  const args = { client: ctx.bin.streamClient, url: sys.url, body, headers: sys.headers, c, work: ctx.work };
  if (ctx.p.warmup > 0) await streamLoad({ ...args, secs: Math.min(ctx.p.warmup, 1) });
  const r = await measured(sys, ctx.mock, () => streamLoad({ ...args, secs: ctx.p.streamSecs }));
  const row = { scenario, system: sys.name, label: sys.name, concurrency: c, ...r };
  log(`${scenario} ${sys.name} c=${c}: ${r.rps.toFixed(0)} streams/s, ttfb p50 ${r.ttfb_ms.p50.toFixed(3)} ms, `
    + `gap p99 ${r.gap_ms.p99.toFixed(3)} ms, chunk latency p50 ${fmt(r.chunk_latency_ms?.p50, 3)} `
    + `p99 ${fmt(r.chunk_latency_ms?.p99, 3)} ms (${r.chunk_latency_count ?? 0}), `
    + `${r.chunks_per_stream.toFixed(1)} chunks, errors ${r.errors}`);
  ctx.rows.push(row);
}

/// Opens `n` streams in four steps (bench/stream_client --hold, one connection each), holds them
/// `hold` seconds, then closes them; the proxy's RSS (and the mock's) after each step and its peak
/// while held.
async function openStreams(ctx, sys) {
  const { mock } = ctx;
  const n = ctx.p.streams;
  const bodyFile = path.join(ctx.work, `hold-body-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(bodyFile, sys.body(HOLD_MODEL, true));
  const base = (await mockStats(mock)).in_flight;
  resetPeak(sys.pid);
  const samples = [{ open: 0, rss_kb: memKb(sys.pid).rss, mock_rss_kb: memKb(mock.proc.pid).rss }];
  const p0 = cpuUs(sys.pid);
  // It answers each "open N" with one line once the new streams have their first body bytes (or
  // failed), and "close" (or the end of its stdin) with its JSON summary.
  const client = spawn(ctx.bin.streamClient, ['--hold', '--url', sys.url, '--body-file', bodyFile,
    '--timeout', '60', ...sys.headers.flatMap((h) => ['--header', h])], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  let partial = '';
  let err = '';
  client.stdout.on('data', (d) => {
    partial += d;
    for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
      lines.push(partial.slice(0, i));
      partial = partial.slice(i + 1);
    }
  });
  client.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => client.once('exit', resolve));
  const line = (test, what) => waitUntil(() => {
    const l = lines.find(test);
    if (l === undefined && client.exitCode !== null) throw new Error(`stream_client exited (${client.exitCode}): ${err}`);
    return l;
  }, { timeoutMs: 90000, intervalMs: 10, what });
  let failed = 0;
  let ended = 0;
  try {
    for (let step = 1; step <= 4; ++step) {
      const target = Math.round((n * step) / 4);
      client.stdin.write(`open ${target}\n`);
      const l = await line((x) => x.startsWith(`open ${target} `), `${target} open streams through ${sys.name}`);
      failed = Number(l.match(/failed=(\d+)/)[1]);
      ended = Number(l.match(/ended=(\d+)/)[1]);
      await waitUntil(async () => (await mockStats(mock)).in_flight - base >= target || failed + ended > 0,
        { timeoutMs: 60000, intervalMs: 50, what: `${target} open streams through ${sys.name} at the mock` });
      samples.push({ open: target, rss_kb: memKb(sys.pid).rss, mock_rss_kb: memKb(mock.proc.pid).rss });
    }
    await measureFor(ctx.p.hold * 1000);
  } catch (e) {
    client.kill('SIGKILL');
    throw e;
  }
  const open = (await mockStats(mock)).in_flight - base;
  const mem = memKb(sys.pid);
  const p1 = cpuUs(sys.pid);
  client.stdin.end('close\n');
  const sum = JSON.parse(await line((x) => x.startsWith('{'), `stream_client to close its ${n} streams`));
  await exited;
  fs.rmSync(bodyFile, { force: true });
  await waitUntil(async () => (await mockStats(mock)).in_flight <= base,
    { timeoutMs: 60000, intervalMs: 50, what: `streams through ${sys.name} to close` });
  const row = {
    scenario: 'open-streams', system: sys.name, label: sys.name, concurrency: n, requests: n,
    errors: sum.failed + sum.ended + Math.max(0, n - open), held_s: ctx.p.hold, open_at_end: open,
    rss_kb: sys.pid ? mem.rss : null, peak_rss_kb: sys.pid ? mem.hwm : null,
    mock_rss_kb: memKb(mock.proc.pid).rss, samples,
    // What each open stream adds (RSS at n streams minus RSS before the first; the process may
    // already hold memory freed after the earlier scenarios, which it reuses first).
    kib_per_stream: ((sys.pid ? samples.at(-1).rss_kb - samples[0].rss_kb
      : samples.at(-1).mock_rss_kb - samples[0].mock_rss_kb) / n),
    proxy_cpu_us_per_req: sys.pid ? (p1 - p0) / n : null,
    loadgen_cpu_us_per_req: sum.cpu_us / n,
  };
  log(`open-streams ${sys.name}: ${open} open, peak RSS ${fmt(mib(row.peak_rss_kb), 1)} MiB, errors ${row.errors}`);
  ctx.rows.push(row);
}

async function idleRow(ctx, sys, secs) {
  const c0 = cpuUs(sys.pid);
  const t0 = Date.now();
  await measureFor(secs * 1000);
  const c1 = cpuUs(sys.pid);
  const mem = memKb(sys.pid);
  ctx.rows.push({
    scenario: 'idle', system: sys.name, label: sys.name, concurrency: 0, requests: 0, errors: 0,
    rss_kb: mem.rss, peak_rss_kb: mem.hwm, idle_cpu_ms_per_s: (c1 - c0) / 1000 / ((Date.now() - t0) / 1000),
  });
}

// -- profile (optional) ---------------------------------------------------------------------------

async function profile(ctx, gw, secs) {
  const out = ctx.out;
  const body = gw.body('bench/fast', false);
  const args = { url: gw.url, body, headers: gw.headers, c: 64, work: ctx.work };
  const res = {};
  if (have('perf')) {
    const data = path.join(ctx.work, 'perf.data');
    const perf = spawn('perf', ['record', '-g', '-F', '999', '-p', String(gw.pid), '-o', data],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitUntil(() => fs.existsSync(data), { timeoutMs: 10000, what: 'perf to start' });
    const w = await wrk({ ...args, secs });
    const done = new Promise((r) => perf.once('exit', r));
    perf.kill('SIGINT');
    await done;
    const rep = spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', 'dso,sym', '--stdio',
      '--percent-limit', '0.5', '-g', 'none'], { maxBuffer: 64 << 20 });
    fs.writeFileSync(path.join(out, 'perf-report.txt'), rep.stdout);
    const top = [];
    for (const line of rep.stdout.toString().split('\n')) {
      const m = line.match(/^\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$/);
      if (m && top.length < 15) top.push({ self_pct: Number(m[1]), dso: m[2], kernel: m[3] === 'k', symbol: m[4] });
    }
    res.perf = { requests: w.requests, rps: w.requests / (w.duration_us / 1e6), top };
  }
  if (have('strace')) {
    const file = path.join(ctx.work, 'strace.txt');
    const st = spawn('strace', ['-c', '-f', '-o', file, '-p', String(gw.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    st.stderr.on('data', (d) => { err += d; });
    await waitUntil(() => /attached/.test(err) || st.exitCode !== null, { timeoutMs: 10000, what: 'strace to attach' });
    const w = await wrk({ ...args, secs });
    const done = new Promise((r) => st.once('exit', r));
    st.kill('SIGINT');
    await done;
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    fs.writeFileSync(path.join(out, 'strace-c.txt'), text);
    const calls = [];
    for (const line of text.split('\n')) {
      const m = line.trim().split(/\s+/);
      if (m.length >= 5 && /^\d/.test(m[0]) && /^[a-z_0-9]+$/.test(m[m.length - 1]) && m[m.length - 1] !== 'total') {
        calls.push({ syscall: m[m.length - 1], calls: Number(m[3]), errors: m.length >= 6 ? Number(m[4]) : 0 });
      }
    }
    const total = calls.reduce((a, b) => a + b.calls, 0);
    res.strace = {
      requests: w.requests,
      syscalls_per_request: total / w.requests,
      top: calls.sort((a, b) => b.calls - a.calls).slice(0, 15)
        .map((x) => ({ ...x, per_request: x.calls / w.requests })),
    };
  }
  return res;
}

// -- report ---------------------------------------------------------------------------------------

/// KiB → MiB; null (no process) stays missing.
const mib = (kb) => (kb === null || kb === undefined ? NaN : kb / 1024);

function fmt(x, d = 2) {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d);
}

function find(rows, scenario, system, c, label) {
  return rows.find((r) => r.scenario === scenario && r.system === system
    && (c === undefined || r.concurrency === c) && (label === undefined || r.label === label));
}

/// Added latency (vs the direct row of the same scenario and concurrency) and ratios.
function derive(rows) {
  for (const r of rows) {
    if (r.scenario !== 'chat-fast' && r.scenario !== 'chat-50ms' && r.scenario !== 'stream') continue;
    const d = find(rows, r.scenario, 'direct', r.concurrency);
    if (!d || r.system === 'direct') continue;
    if (r.latency_ms) {
      r.added_ms = { p50: r.latency_ms.p50 - d.latency_ms.p50, p99: r.latency_ms.p99 - d.latency_ms.p99 };
      r.rps_vs_direct = r.rps / d.rps;
    }
    if (r.ttfb_ms) {
      r.added_ttfb_ms = { p50: r.ttfb_ms.p50 - d.ttfb_ms.p50, p99: r.ttfb_ms.p99 - d.ttfb_ms.p99 };
      r.added_ttft_ms = { p50: r.ttft_ms.p50 - d.ttft_ms.p50, p99: r.ttft_ms.p99 - d.ttft_ms.p99 };
      r.added_gap_ms = { p50: r.gap_ms.p50 - d.gap_ms.p50, p99: r.gap_ms.p99 - d.gap_ms.p99 };
      // Per-chunk latency from the mock's send time: the same percentile of both rows.
      const cl = r.chunk_latency_ms;
      const dl = d.chunk_latency_ms;
      r.added_chunk_latency_ms = cl && dl ? { p50: cl.p50 - dl.p50, p99: cl.p99 - dl.p99 } : null;
      r.rps_vs_direct = r.rps / d.rps;
    }
  }
  const fb = find(rows, 'fallback', 'inferbridge', undefined, 'inferbridge 503→success');
  const fbBase = find(rows, 'fallback', 'inferbridge', undefined, 'inferbridge success');
  if (fb && fbBase) {
    fb.added_ms = { p50: fb.latency_ms.p50 - fbBase.latency_ms.p50, p99: fb.latency_ms.p99 - fbBase.latency_ms.p99 };
    fb.rps_vs_direct = fb.rps / fbBase.rps;
  }
  const ratio = (a, b) => (a && b ? a / b : NaN);
  const ib64 = find(rows, 'chat-fast', 'inferbridge', 64);
  const ng64 = find(rows, 'chat-fast', 'nginx', 64);
  const tA = find(rows, 'translation', 'inferbridge', undefined, 'inferbridge anthropic');
  const tO = find(rows, 'translation', 'inferbridge', undefined, 'inferbridge openai');
  return {
    cpu_ib_over_nginx_c64: ratio(ib64?.proxy_cpu_us_per_req, ng64?.proxy_cpu_us_per_req),
    rps_ib_over_nginx_c64: ratio(ib64?.rps, ng64?.rps),
    cpu_anthropic_over_openai: ratio(tA?.proxy_cpu_us_per_req, tO?.proxy_cpu_us_per_req),
  };
}

function targets(rows, ratios) {
  const t = [];
  const add = (what, goal, value, unit, holds) => {
    // A negative "added" figure means the reference row was the slower one: noise, not a gain,
    // so no verdict (`holds: null`) rather than a pass.
    const noise = Number.isFinite(value) && value < 0 && /added/.test(what);
    t.push({
      what, goal, value: Number.isFinite(value) ? value : null, unit,
      holds: Number.isFinite(value) && !noise ? holds(value) : null,
      ...(noise ? { note: 'no verdict: negative, the reference row was slower (noise)' } : {}),
    });
  };
  add('fast mock, c=64: InferBridge CPU/request ÷ nginx', '≤ 1.3×', ratios.cpu_ib_over_nginx_c64, '×', (v) => v <= 1.3);
  add('fast mock, c=64: InferBridge RPS ÷ nginx', '≥ 0.8×', ratios.rps_ib_over_nginx_c64, '×', (v) => v >= 0.8);
  const c1 = find(rows, 'chat-fast', 'inferbridge', 1);
  add('fast mock, c=1: added p50 vs direct', '≤ 60 µs', c1?.added_ms && c1.added_ms.p50 * 1000, 'µs', (v) => v <= 60);
  add('fast mock, c=1: added p99 vs direct', '≤ 200 µs', c1?.added_ms && c1.added_ms.p99 * 1000, 'µs', (v) => v <= 200);
  const s256 = find(rows, 'chat-50ms', 'inferbridge', 256);
  add('50 ms mock, c=256: RPS ÷ direct', '≥ 0.98×', s256?.rps_vs_direct, '×', (v) => v >= 0.98);
  add('50 ms mock, c=256: added p99 vs direct', '≤ 2 ms', s256?.added_ms?.p99, 'ms', (v) => v <= 2);
  const st = find(rows, 'stream', 'inferbridge', 16);
  add('streams, c=16: added time to first byte p50', '≤ 150 µs', st?.added_ttfb_ms && st.added_ttfb_ms.p50 * 1000, 'µs', (v) => v <= 150);
  add('streams, c=16: added time to first content chunk p50', '≤ 150 µs', st?.added_ttft_ms && st.added_ttft_ms.p50 * 1000, 'µs', (v) => v <= 150);
  // Each chunk's latency from the mock's send time (not the gaps: the mock's timer jitter moves those by ms).
  add('streams, c=16: added inter-chunk delay p99 (per-chunk latency)', '≤ 100 µs',
    st?.added_chunk_latency_ms && st.added_chunk_latency_ms.p99 * 1000, 'µs', (v) => v <= 100);
  const os_ = find(rows, 'open-streams', 'inferbridge');
  add(`${os_?.concurrency ?? 1000} open streams: InferBridge peak RSS`, '≤ 48 MB', os_ && (os_.peak_rss_kb * 1024) / 1e6, 'MB', (v) => v <= 48);
  const idle = find(rows, 'idle', 'inferbridge');
  add('idle: InferBridge RSS', '≤ 16 MB', idle && (idle.rss_kb * 1024) / 1e6, 'MB', (v) => v <= 16);
  const fb = find(rows, 'fallback', 'inferbridge', undefined, 'inferbridge 503→success');
  add('fallback (503 at once, then success): added p50 vs a direct success', '≤ 200 µs', fb?.added_ms && fb.added_ms.p50 * 1000, 'µs', (v) => v <= 200);
  add('Anthropic translation: CPU/request ÷ pass-through', '≤ 1.5×', ratios.cpu_anthropic_over_openai, '×', (v) => v <= 1.5);
  return t;
}

function markdown(res) {
  const { meta, rows, ratios } = res;
  const L = [];
  L.push(`# InferBridge load benchmark — ${meta.stamp}`);
  L.push('');
  L.push(`${meta.mode} run${meta.only ? ` (only ${meta.only.join(', ')})` : ''} on ${meta.cores} cores (${meta.cpu}), load average ${meta.loadavg_before.map((x) => x.toFixed(2)).join(' ')} before, `
    + `${meta.loadavg_after.map((x) => x.toFixed(2)).join(' ')} after. ${meta.duration_s} s per row (warm-up ${meta.warmup_s} s), `
    + `wrk -t1 for non-streamed rows, bench/stream_client (C++, epoll) for streams. Request ${meta.request_bytes} B, `
    + `direct response ${fmt(meta.response_bytes, 0)} B (headers included). Binaries: ${meta.build_dir} (the gateway's allocator: ${meta.allocator}).`);
  L.push('Latencies in ms; CPU in µs per request (or per stream) of the process named; RSS in MiB; '
    + '"added" is the difference to the direct row of the same scenario and concurrency.');
  L.push('');
  L.push('## Targets of issue 17 (ratios within this run)');
  L.push('');
  L.push('| what | target | measured | holds? |');
  L.push('|---|---|---|---|');
  for (const t of res.targets) {
    const v = t.value === null ? 'not measured' : `${fmt(t.value, t.unit === '×' ? 2 : (t.unit === 'ms' ? 3 : 1))} ${t.unit}`;
    const verdict = t.holds === null ? '–' : (t.holds ? 'yes' : '**no**');
    L.push(`| ${t.what} | ${t.goal} | ${v} | ${t.note ? `${verdict} (${t.note})` : verdict} |`);
  }
  L.push('');
  L.push(`Ratios: InferBridge ÷ nginx CPU/request at c=64 ${fmt(ratios.cpu_ib_over_nginx_c64)}×, throughput `
    + `${fmt(ratios.rps_ib_over_nginx_c64)}×; Anthropic-translated ÷ pass-through CPU/request ${fmt(ratios.cpu_anthropic_over_openai)}×.`);
  L.push('');
  L.push('## Non-streamed chat (wrk -t1)');
  L.push('');
  L.push('| scenario | path | c | RPS | vs direct | p50 | p90 | p99 | p99.9 | added p50 | added p99 | proxy CPU µs/req | peak RSS MiB | errors | upstream conns (reuse %) | wrk CPU µs/req | mock CPU µs/req |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows.filter((x) => x.latency_ms)) {
    L.push(`| ${r.scenario} | ${r.label} | ${r.concurrency} | ${fmt(r.rps, 0)} | ${fmt(r.rps_vs_direct)} | ${fmt(r.latency_ms.p50, 3)} | `
      + `${fmt(r.latency_ms.p90, 3)} | ${fmt(r.latency_ms.p99, 3)} | ${fmt(r.latency_ms.p999, 3)} | ${fmt(r.added_ms?.p50, 3)} | `
      + `${fmt(r.added_ms?.p99, 3)} | ${fmt(r.proxy_cpu_us_per_req, 1)} | ${fmt(mib(r.peak_rss_kb), 1)} | ${r.errors} | `
      + `${r.upstream_conns} (${fmt(r.pool_reuse_pct, 1)}) | ${fmt(r.loadgen_cpu_us_per_req, 1)} | ${fmt(r.mock_cpu_us_per_req, 1)} |`);
  }
  L.push('');
  L.push('"fallback" rows: `inferbridge success` is a tier whose only provider answers at once; '
    + '`inferbridge 503→success` a tier whose first provider answers 503 at once, then that same success; '
    + 'their "added" is the difference between the two. "translation" rows: the same request on a tier '
    + 'served by the OpenAI protocol (pass-through) and by the Anthropic protocol (translated both ways).');
  L.push('');
  L.push('## Streamed chat (20 chunks, 20 ms apart; bench/stream_client, keep-alive)');
  L.push('');
  L.push('| path | c | streams/s | TTFB p50 | TTFB p99 | added TTFB p50 | added TTFB p99 | first content p50 | added first content p50 | added first content p99 | chunk latency p50 | chunk latency p99 | added chunk latency p50 | added chunk latency p99 | gap p50 | gap p99 | added gap p99 | reads/stream | proxy CPU µs/stream | peak RSS MiB | errors | upstream conns (reuse %) | client CPU µs/stream | mock CPU µs/stream |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows.filter((x) => x.ttfb_ms)) {
    L.push(`| ${r.label} | ${r.concurrency} | ${fmt(r.rps, 1)} | ${fmt(r.ttfb_ms.p50, 3)} | ${fmt(r.ttfb_ms.p99, 3)} | `
      + `${fmt(r.added_ttfb_ms?.p50, 3)} | ${fmt(r.added_ttfb_ms?.p99, 3)} | ${fmt(r.ttft_ms.p50, 3)} | `
      + `${fmt(r.added_ttft_ms?.p50, 3)} | ${fmt(r.added_ttft_ms?.p99, 3)} | `
      + `${fmt(r.chunk_latency_ms?.p50, 3)} | ${fmt(r.chunk_latency_ms?.p99, 3)} | `
      + `${fmt(r.added_chunk_latency_ms?.p50, 3)} | ${fmt(r.added_chunk_latency_ms?.p99, 3)} | `
      + `${fmt(r.gap_ms.p50, 3)} | ${fmt(r.gap_ms.p99, 3)} | `
      + `${fmt(r.added_gap_ms?.p99, 3)} | ${fmt(r.chunks_per_stream, 1)} | ${fmt(r.proxy_cpu_us_per_req, 1)} | `
      + `${fmt(mib(r.peak_rss_kb), 1)} | ${r.errors} | ${r.upstream_conns} (${fmt(r.pool_reuse_pct, 1)}) | `
      + `${fmt(r.loadgen_cpu_us_per_req, 1)} | ${fmt(r.mock_cpu_us_per_req, 1)} |`);
  }
  L.push('');
  L.push('Times from the write of the request. TTFB: to the first body bytes (the role chunk); first content: to '
    + 'the first event with text. Chunk latency: per event with text, the time of the read that delivered it '
    + 'minus the send time the mock wrote into it (`x_mock_sent_ns`, both CLOCK_MONOTONIC); "added chunk '
    + 'latency" is this row\'s percentile minus the direct row\'s same percentile, and is the figure of the '
    + '"inter-chunk delay" target. A gap: the time between two events with text in one stream (events that '
    + 'arrive in one read have a gap of 0); it carries the mock\'s timer jitter. "reads/stream" counts the reads that carried body bytes (22 when role '
    + 'chunk and content chunks arrive apart, and finish and `[DONE]`, sent at once, in one read). "client CPU" is the stream client\'s own.');
  L.push('');
  L.push('## Memory: open streams and idle');
  L.push('');
  L.push('| path | open streams | held s | open at end | RSS MiB by open streams (0 / ¼ / ½ / ¾ / all) | peak RSS MiB | KiB per stream | mock RSS MiB | errors | proxy CPU µs/stream |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows.filter((x) => x.scenario === 'open-streams')) {
    const rss = r.samples.map((s) => fmt(mib(r.system === 'direct' ? s.mock_rss_kb : s.rss_kb), 1)).join(' / ');
    L.push(`| ${r.label} | ${r.concurrency} | ${r.held_s} | ${r.open_at_end} | ${rss} | ${fmt(mib(r.peak_rss_kb), 1)} | `
      + `${fmt(r.kib_per_stream, 1)} | ${fmt(mib(r.mock_rss_kb), 1)} | ${r.errors} | ${fmt(r.proxy_cpu_us_per_req, 1)} |`);
  }
  L.push('');
  L.push('For "direct" the RSS by open streams is the mock\'s own. The scenario runs after the load scenarios: '
    + 'a process starts it with the memory it kept from them (allocators keep freed memory), so "KiB per '
    + 'stream" (RSS with all streams open minus RSS before the first, per stream) is the cost of a stream. '
    + '"inferbridge-https" holds the same streams through a second gateway process, started for that row, '
    + 'to an HTTPS upstream (nginx terminating TLS in front of the mock): what each stream costs when, as '
    + 'with every real provider, its upstream connection is TLS.');
  L.push('');
  L.push('| idle process | RSS MiB | peak RSS MiB | CPU ms/s |');
  L.push('|---|---|---|---|');
  for (const r of rows.filter((x) => x.scenario === 'idle')) {
    L.push(`| ${r.label} | ${fmt(mib(r.rss_kb), 1)} | ${fmt(mib(r.peak_rss_kb), 1)} | ${fmt(r.idle_cpu_ms_per_s, 2)} |`);
  }
  if (res.profile && (res.profile.strace || res.profile.perf)) {
    L.push('');
    L.push('## Profile (InferBridge, fast mock, c=64)');
    if (res.profile.strace) {
      L.push('');
      L.push(`strace -c -f: ${fmt(res.profile.strace.syscalls_per_request, 1)} syscalls per request.`);
      L.push('');
      L.push('| syscall | calls | failed (e.g. EAGAIN) | per request |');
      L.push('|---|---|---|---|');
      for (const s of res.profile.strace.top) L.push(`| ${s.syscall} | ${s.calls} | ${s.errors} | ${fmt(s.per_request, 2)} |`);
    }
    if (res.profile.perf) {
      L.push('', `\`perf record -g\` (${fmt(res.profile.perf.rps, 0)} requests/s while sampled), top self costs; `
        + 'the whole report is perf-report.txt beside this file.', '', '| self % | object | symbol |', '|---|---|---|');
      for (const t of res.profile.perf.top) {
        const sym = t.symbol.length > 110 ? `${t.symbol.slice(0, 107)}...` : t.symbol;
        L.push(`| ${fmt(t.self_pct, 2)} | ${t.dso} | \`${sym.replaceAll('|', '\\|').replaceAll('`', "'")}\` |`);
      }
    }
  }
  L.push('');
  L.push('Plots: latency.png (percentiles vs concurrency per path), cpu.png (proxy CPU µs per request), rss.png (RSS vs open streams).');
  return `${L.join('\n')}\n`;
}

function plots(out, rows) {
  // A plot with nothing to show (a scenario left out with --only) says so instead of failing.
  const empty = "set label 1 'not measured in this run' at graph 0.5,0.5 center\nplot [1:2] [1:2] 1/0 notitle\nunset label 1";
  const dat = (name, text) => { fs.writeFileSync(path.join(out, name), text); return name; };
  const systems = [...new Set(rows.map((r) => r.system))];
  const scripts = [];
  // Latency percentiles vs concurrency, one panel per mock.
  const lat = [];
  for (const [i, sc] of ['chat-fast', 'chat-50ms'].entries()) {
    const series = [];
    for (const s of systems) {
      const rs = rows.filter((r) => r.scenario === sc && r.system === s).sort((a, b) => a.concurrency - b.concurrency);
      if (!rs.length) continue;
      const f = dat(`latency-${sc}-${s}.dat`, `# c p50 p90 p99 p99.9 (ms)\n${rs.map((r) => `${r.concurrency} ${r.latency_ms.p50} ${r.latency_ms.p90} ${r.latency_ms.p99} ${r.latency_ms.p999}`).join('\n')}\n`);
      series.push(`'${f}' using 1:2 with linespoints lw 2 dt 1 lc ${systems.indexOf(s) + 1} title '${s} p50'`,
        `'${f}' using 1:4 with linespoints lw 2 dt 2 lc ${systems.indexOf(s) + 1} title '${s} p99'`,
        `'${f}' using 1:5 with linespoints lw 1 dt 3 lc ${systems.indexOf(s) + 1} title '${s} p99.9'`);
    }
    lat.push(`set title '${sc === 'chat-fast' ? 'mock answers at once' : 'mock answers after 50 ms'}'`,
      i === 0 ? 'set logscale y' : 'unset logscale y',
      series.length ? `plot ${series.join(', ')}` : empty);
  }
  scripts.push(['latency.png', [
    'set terminal pngcairo size 1400,600', "set output 'latency.png'", 'set multiplot layout 1,2',
    'set logscale x 2', "set xlabel 'concurrency (connections)'", "set ylabel 'latency (ms)'",
    'set key top left', 'set grid', ...lat, 'unset multiplot'].join('\n')]);
  // CPU µs per request per path, per scenario.
  const proxied = systems.filter((s) => s !== 'direct');
  const cpuRows = [];
  const seen = new Set();
  for (const r of rows) {
    if (r.proxy_cpu_us_per_req === null || r.proxy_cpu_us_per_req === undefined || r.scenario === 'idle') continue;
    const key = r.scenario === 'fallback' || r.scenario === 'translation'
      ? `${r.scenario}:${r.label.replace('inferbridge ', '')}` : `${r.scenario}:c${r.concurrency}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const vals = proxied.map((s) => {
      const m = rows.find((x) => x.scenario === r.scenario && x.system === s && (
        r.scenario === 'fallback' || r.scenario === 'translation' ? x.label === r.label : x.concurrency === r.concurrency));
      return m && Number.isFinite(m.proxy_cpu_us_per_req) ? m.proxy_cpu_us_per_req.toFixed(2) : 'NaN';
    });
    cpuRows.push(`"${key}" ${vals.join(' ')}`);
  }
  const cpuDat = dat('cpu.dat', `# scenario ${proxied.join(' ')}\n${cpuRows.join('\n')}\n`);
  scripts.push(['cpu.png', [
    'set terminal pngcairo size 1400,600', "set output 'cpu.png'", "set datafile missing 'NaN'",
    "set title 'proxy CPU per request (all threads, utime+stime)'", "set ylabel 'µs per request (per stream)'",
    'set style data histograms', 'set style histogram clustered gap 1', 'set style fill solid 0.8 border -1',
    'set xtics rotate by -35', 'set logscale y', 'set grid ytics', 'set key top left',
    proxied.length && cpuRows.length
      ? `plot ${proxied.map((s, i) => `'${cpuDat}' using ${i + 2}:xtic(1) title '${s}'`).join(', ')}` : empty,
  ].join('\n')]);
  // RSS vs open streams.
  const rssSeries = [];
  for (const r of rows.filter((x) => x.scenario === 'open-streams' && (x.system === 'direct' || x.peak_rss_kb))) {
    const f = dat(`rss-${r.system}.dat`, `# open rss_mib\n${r.samples.map((s) => `${s.open} ${((r.system === 'direct' ? s.mock_rss_kb : s.rss_kb) / 1024).toFixed(2)}`).join('\n')}\n`);
    rssSeries.push(`'${f}' using 1:2 with linespoints lw 2 title '${r.system === 'direct' ? 'mock (direct)' : r.system}'`);
  }
  scripts.push(['rss.png', [
    'set terminal pngcairo size 1000,600', "set output 'rss.png'", "set title 'RSS vs open streams'",
    "set xlabel 'open streams'", "set ylabel 'RSS (MiB)'", 'set grid', 'set key top left', 'set yrange [0:*]',
    rssSeries.length ? `plot ${rssSeries.join(', ')}` : empty].join('\n')]);
  for (const [png, text] of scripts) {
    const gp = `${png.replace('.png', '')}.gp`;
    fs.writeFileSync(path.join(out, gp), `${text}\n`);
    const r = spawnSync('gnuplot', [gp], { cwd: out, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`gnuplot ${gp} failed: ${r.stderr}`);
  }
}

/// Starts the gateway with the bench configuration and its data in `work/dataDir`, every bench
/// provider on the mock; with `tls` ({ port, cert }), also provider `together` on nginx's TLS
/// server (HTTPS_HOLD_TIER), its certificate trusted through IB_EXTRA_CA_FILE.
async function startGateway(bin, work, dataDir, mock, tls) {
  const cfg = path.join(work, `config-${dataDir}.json`);
  fs.writeFileSync(cfg, JSON.stringify(gatewayConfig(Boolean(tls)), null, 2));
  return startProcess(bin.gw, ['--config', cfg], {
    env: {
      IB_LISTEN: '127.0.0.1:0', IB_DATA_DIR: path.join(work, dataDir), IB_SIGNUPS_PER_HOUR: '0',
      IB_LOG_LEVEL: 'warn',
      IB_OPENAI_BASE_URL: `${mock.url}/openai/v1`,
      IB_ANTHROPIC_BASE_URL: `${mock.url}/anthropic/v1`,
      IB_GROQ_BASE_URL: `${mock.url}/groq/openai/v1`,
      ...(tls ? { IB_TOGETHER_BASE_URL: `https://127.0.0.1:${tls.port}/openai/v1`, IB_EXTRA_CA_FILE: tls.cert } : {}),
    },
  });
}

/// Signs a user up on `gw` and gives it the mock's key for each of `providers`; its gateway key.
async function signUp(gw, providers) {
  const user = await api(gw.url, 'POST', '/v1/users', { body: { email: 'bench@example.com' } });
  if (user.status !== 201) throw new Error(`sign-up failed: ${user.status} ${user.text}`);
  for (const provider of providers) {
    const r = await api(gw.url, 'POST', '/v1/keys', { key: user.json.api_key, body: { provider, api_key: MOCK_KEY } });
    if (r.status !== 201 && r.status !== 200) throw new Error(`adding the ${provider} key failed: ${r.status} ${r.text}`);
  }
  return user.json.api_key;
}

// -- main -----------------------------------------------------------------------------------------

async function main() {
  let o;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const missing = ['wrk', 'nginx', 'gnuplot', 'openssl'].filter((c) => !have(c));
  if (missing.length) {
    console.error(`missing: ${missing.join(', ')} — install with scripts/install-deps.sh --bench `
      + '(or scripts/install-deps.sh --test, which includes them)');
    process.exit(3);
  }
  const p = plan(o);
  if (o.build) build(o);
  const bin = { gw: path.join(o.buildDir, 'inferbridge'), mock: path.join(o.buildDir, 'bench', 'mock_provider'),
    streamClient: path.join(o.buildDir, 'bench', 'stream_client') };
  for (const f of Object.values(bin)) {
    if (!fs.existsSync(f)) {
      console.error(`${f} is missing: build it (drop --no-build) or give --build-dir`);
      process.exit(2);
    }
  }
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const out = o.out ?? path.join(here, 'results', stamp);
  fs.mkdirSync(out, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ib-bench-'));
  const ctx = { o, p, out, work, bin, rows: [] };
  const runs = (scenario) => !o.only || o.only.has(scenario);
  const loadBefore = os.loadavg();
  const started = Date.now();
  let mock;
  let gw;
  let gwAllocator = null;
  let nginx;
  try {
    mock = await startProcess(bin.mock, ['--listen', `127.0.0.1:${o.mockPort}`, '--record-limit', '0']);
    ctx.mock = mock;
    // An unknown token is a 400: fall back to the first stream model this mock accepts.
    for (const m of [STREAM_MODEL, ...FALLBACK_STREAM_MODELS]) {
      const probe = await fetch(`${mock.url}/openai/v1/chat/completions`, { method: 'POST',
        headers: { authorization: `Bearer ${MOCK_KEY}`, 'content-type': 'application/json' },
        body: chatBody(m, false) });
      await probe.text();
      if (probe.status !== 400) {
        if (m !== STREAM_MODEL) {
          log(`this mock does not know every token of ${STREAM_MODEL}: streams use ${m}`);
          delete IB_TIER[STREAM_MODEL];
          STREAM_MODEL = m;
          IB_TIER[STREAM_MODEL] = 'bench/stream';
        }
        break;
      }
    }
    const tls = { ...makeCertificate(path.join(work, 'tls')), port: await freePort() };
    gw = await startGateway(bin, work, 'data', mock);
    gwAllocator = allocatorOf(gw.proc.pid);
    nginx = await startNginx(work, mock.port, tls);
    const key = await signUp(gw, ['openai', 'anthropic', 'groq']);
    const mockHeaders = [`Authorization: Bearer ${MOCK_KEY}`];
    const systems = [
      { name: 'direct', url: `${mock.url}/openai/v1/chat/completions`, headers: mockHeaders, pid: null,
        body: (m, s) => chatBody(m, s) },
      { name: 'nginx', url: `${nginx.url}/openai/v1/chat/completions`, headers: mockHeaders, pid: nginx.pid,
        body: (m, s) => chatBody(m, s) },
      { name: 'inferbridge', url: `${gw.url}/v1/chat/completions`, headers: [`Authorization: Bearer ${key}`],
        pid: gw.proc.pid, body: (m, s) => chatBody(IB_TIER[m] ?? m, s) },
    ];
    if (o.otherUrl) {
      systems.push({ name: o.otherName, url: o.otherUrl, headers: o.otherHeaders, pid: o.otherPid ?? null,
        body: (m, s) => otherBody(o, m, s) });
    }
    const bySys = Object.fromEntries(systems.map((s) => [s.name, s]));
    // Sanity: one answer per path, and its size.
    for (const s of systems) {
      const r = await fetch(s.url, { method: 'POST', headers: Object.fromEntries(s.headers.map((h) => [h.slice(0, h.indexOf(':')).trim(), h.slice(h.indexOf(':') + 1).trim()])), body: s.body('mock-ok', false) });
      const t = await r.text();
      if (r.status !== 200) throw new Error(`${s.name}: first request answered ${r.status}: ${t.slice(0, 300)}`);
    }
    // The fallback tier must pay the hop: its first provider fails, the second answers.
    const fb = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: chatBody('bench/fallback') });
    const fbText = await fb.text();
    const attempts = fb.headers.get('x-inferbridge-attempts');
    if (fb.status !== 200 || attempts !== 'openai=503;groq=200') {
      throw new Error(`fallback tier answered ${fb.status} (attempts ${attempts}): ${fbText.slice(0, 300)}`);
    }

    log(`mock ${mock.url}, nginx ${nginx.url} (worker ${nginx.pid}), inferbridge ${gw.url} (pid ${gw.proc.pid})`);
    // Idle first, before any load.
    if (runs('idle')) {
      await Promise.all(systems.filter((s) => s.pid).map((s) => idleRow(ctx, s, o.quick ? 0.5 : 3)));
      ctx.rows.push({ scenario: 'idle', system: 'mock', label: 'mock', concurrency: 0, requests: 0, errors: 0,
        rss_kb: memKb(mock.proc.pid).rss, peak_rss_kb: memKb(mock.proc.pid).hwm, idle_cpu_ms_per_s: NaN });
    }

    for (const [scenario, model, cs] of [['chat-fast', 'mock-ok', p.fast], ['chat-50ms', 'mock-ok+latency-50', p.slow]]) {
      if (!runs(scenario)) continue;
      for (const c of cs) {
        for (const s of systems) await wrkRow(ctx, { scenario, sys: s, c, model });
      }
    }
    for (const c of runs('stream') ? p.stream : []) {
      for (const s of systems) await streamRow(ctx, { scenario: 'stream', sys: s, c });
    }
    const ib = bySys.inferbridge;
    // Fallback: the same success with and without a 503 first, alternated twice.
    for (let i = 0; i < (runs('fallback') ? (o.quick ? 1 : 2) : 0); ++i) {
      for (const [label, tier] of [['inferbridge success', 'bench/groq'], ['inferbridge 503→success', 'bench/fallback']]) {
        const prev = find(ctx.rows, 'fallback', 'inferbridge', undefined, label);
        const row = await wrkRow(ctx, { scenario: 'fallback', sys: { ...ib, body: (m, s) => chatBody(tier, s) },
          c: p.fallbackC, model: tier, label });
        if (prev) {
          // Keep the better of the two runs of each path (less disturbed by the shared machine).
          ctx.rows.splice(ctx.rows.indexOf(prev.latency_ms.p50 <= row.latency_ms.p50 ? row : prev), 1);
        }
      }
    }
    for (const [label, tier] of runs('translation')
      ? [['inferbridge openai', 'bench/fast'], ['inferbridge anthropic', 'bench/anthropic']] : []) {
      await wrkRow(ctx, { scenario: 'translation', sys: { ...ib, body: (m, s) => chatBody(tier, s) },
        c: p.translationC, model: tier, label });
    }
    for (const s of runs('open-streams') ? systems : []) await openStreams(ctx, s);
    if (runs('open-streams')) {
      // The same streams through a gateway of their own to an HTTPS upstream (nginx terminating
      // TLS), so that the other rows measure the gateway as configured before this one existed.
      const gwTls = await startGateway(bin, work, 'data-https', mock, tls);
      try {
        const tlsKey = await signUp(gwTls, ['together']);
        await openStreams(ctx, { name: 'inferbridge-https', url: `${gwTls.url}/v1/chat/completions`,
          headers: [`Authorization: Bearer ${tlsKey}`], pid: gwTls.proc.pid,
          body: (m, s) => chatBody(HTTPS_HOLD_TIER, s) });
      } finally {
        await stopProcess(gwTls).catch((e) => log(`gateway (HTTPS upstream): ${e.message.split('\n')[0]}`));
      }
    }
    const ratios = derive(ctx.rows);
    const res = {
      meta: {
        stamp, mode: o.quick ? 'quick' : 'full', cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?',
        loadavg_before: loadBefore, loadavg_after: os.loadavg(), duration_s: p.duration, warmup_s: p.warmup,
        stream_duration_s: p.streamSecs, open_streams: p.streams, hold_s: p.hold,
        request_bytes: Buffer.byteLength(chatBody('mock-ok')),
        response_bytes: find(ctx.rows, 'chat-fast', 'direct')?.bytes_per_response ?? NaN,
        build_dir: o.buildDir, allocator: gwAllocator, stream_model: STREAM_MODEL, hold_model: HOLD_MODEL,
        nginx: spawnSync(tool('nginx'), ['-v'], { encoding: 'utf8' }).stderr.trim(),
        wrk: spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0].trim(),
        other: o.otherUrl ? { name: o.otherName, url: o.otherUrl, pid: o.otherPid ?? null } : null,
        only: o.only ? [...o.only] : null, stream_client: bin.streamClient,
      },
      rows: ctx.rows,
      ratios,
    };
    res.targets = targets(ctx.rows, ratios);
    if (o.profile > 0) res.profile = await profile(ctx, ib, o.profile);
    res.meta.total_s = (Date.now() - started) / 1000;
    // JSON has no NaN: missing figures become null.
    fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(res, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    const md = markdown(res);
    fs.writeFileSync(path.join(out, 'results.md'), md);
    plots(out, ctx.rows);
    process.stdout.write(md);
    log(`results in ${out} (${res.meta.total_s.toFixed(0)} s)`);
  } finally {
    await stopNginx(nginx).catch(() => {});
    if (gw) await stopProcess(gw).catch((e) => log(`gateway: ${e.message.split('\n')[0]}`));
    if (mock) await stopProcess(mock).catch((e) => log(`mock: ${e.message.split('\n')[0]}`));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/// The gateway's tier for each mock model the scenarios use.
const IB_TIER = {
  'mock-ok': 'bench/fast',
  'mock-ok+latency-50': 'bench/slow',
  [STREAM_MODEL]: 'bench/stream',
  [HOLD_MODEL]: 'bench/hold',
};

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exit(1);
});
