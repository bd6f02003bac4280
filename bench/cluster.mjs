// The figures issue 14's closing note needs, in one run against one real PostgreSQL 15, one mock
// provider and real gateways on loopback:
//   1. chat throughput of one node on PostgreSQL vs one on LMDB, alternating (LMDB, PG, LMDB, PG),
//      wrk -t1 -c32 non-streamed through `openai/gpt-4o-mini`: requests/s, p50/p90/p99, the
//      gateway's CPU µs per request (utime + stime of all its threads, /proc/<pid>/stat) over the
//      run and until its request records are written (each run starts with no backlog), and the
//      PostgreSQL server's CPU over that span;
//   2. write latency on each store: 200 sequential `POST /v1/users` per node after a warm-up of 10,
//      then one `POST /v1/keys` (a new key) for each of those users, the two nodes alternating;
//   3. breaker propagation: two PostgreSQL nodes A and B on one database; per trip the mock fails
//      the tier's first provider twice (consecutive_failures 2), t0 = arrival of the response
//      through A that opened A's breaker, t1 = the first /readyz of B showing it not `closed`
//      (polled back to back); the sample is t1 − t0. Then chats through B while it is open must not
//      reach the provider (counted at the mock), and the breaker recovers (a probe after the
//      cooldown succeeds) on both nodes before the next trip.
// Tables on stdout; the same as JSON in bench/results/cluster-<stamp>.json. Builds nothing:
// IB_BUILD_DIR (default ./build) must hold inferbridge and bench/mock_provider. Needs wrk and
// Debian's postgresql-15 (tests/e2e/lib/pg.mjs).
//   node bench/cluster.mjs [--duration SECONDS (10)] [--trips N (30)]
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
process.env.IB_BUILD_DIR ??= path.join(root, 'build');
const buildDir = path.resolve(process.env.IB_BUILD_DIR);

// -- arguments and prerequisites --------------------------------------------------------------------

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node bench/cluster.mjs [--duration SECONDS] [--trips N]');
  process.exit(2);
}
const opts = { duration: 10, trips: 30 };
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, '');
  const v = Number(process.argv[i + 1]);
  if (!(name in opts) || !Number.isInteger(v) || v < 1) usage(`bad argument: ${process.argv.slice(i, i + 2).join(' ')}`);
  opts[name] = v;
}

const gatewayBin = path.join(buildDir, 'inferbridge');
const mockBin = path.join(buildDir, 'bench', 'mock_provider');
for (const f of [gatewayBin, mockBin]) {
  if (!fs.existsSync(f)) {
    const rel = path.relative(root, buildDir);
    const b = rel === '' ? '.' : rel.startsWith('..') ? buildDir : rel;
    console.error(`${f} is missing. Build it first (from the repo root):\n`
      + `  cmake -S . -B ${b} -G Ninja -DCMAKE_BUILD_TYPE=Release -DIB_BUILD_TESTS=OFF\n`
      + `  cmake --build ${b} -j2 --target inferbridge mock_provider`);
    process.exit(2);
  }
}
try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }); } catch (e) {
  if (e.code === 'ENOENT') usage('wrk is required: apt-get install wrk');
}

const { startMock, stopProcess, waitUntil } = await import('../tests/e2e/lib/procs.mjs');
const { startPostgres } = await import('../tests/e2e/lib/pg.mjs');
const { mockProviderEnv, mockScript, mockStats } = await import('../tests/e2e/lib/stack.mjs');

// -- processes ----------------------------------------------------------------------------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ib-cluster-bench-'));
const gateways = new Set();
const wrks = new Set();
// A signal still cleans up: process.exit runs the 'exit' handlers of procs.mjs and pg.mjs (which
// kill their processes and remove the PostgreSQL dir) and the one below.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
process.on('exit', () => {
  for (const p of [...wrks, ...[...gateways].map((g) => g.proc)]) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  fs.rmSync(work, { recursive: true, force: true });
});

/// A Fernet key: 32 random bytes, url-safe base64 with its padding.
const MASTER_KEY = crypto.randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

/// Starts a gateway with its stdout (one log line per request) going to a file, as bench/run.sh
/// does, rather than into this process; resolves once it printed its listening line. The result
/// is what procs.mjs's stopProcess takes.
async function startNode(name, { env = {}, config } = {}) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  const args = [];
  if (config) {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
    args.push('--config', path.join(dir, 'config.json'));
  }
  const outFile = path.join(dir, 'stdout');
  const errFile = path.join(dir, 'stderr');
  const out = fs.openSync(outFile, 'w');
  const err = fs.openSync(errFile, 'w');
  const proc = spawn(gatewayBin, args, {
    env: {
      ...process.env, IB_LISTEN: '127.0.0.1:0', IB_DATA_DIR: path.join(dir, 'data'),
      IB_MASTER_KEY: MASTER_KEY, IB_SIGNUPS_PER_HOUR: '0', ...env,
    },
    stdio: ['ignore', out, err],
  });
  fs.closeSync(out);
  fs.closeSync(err);
  // The first `n` bytes of a file, or with `fromEnd` its last `n`.
  const read = (f, n = 1 << 16, fromEnd = false) => {
    const fd = fs.openSync(f, 'r');
    try {
      const at = fromEnd ? Math.max(0, fs.fstatSync(fd).size - n) : 0;
      const buf = Buffer.alloc(n);
      return buf.subarray(0, fs.readSync(fd, buf, 0, n, at)).toString();
    } finally { fs.closeSync(fd); }
  };
  const gw = {
    name, proc, stdout: () => read(outFile), tail: () => read(outFile, 1 << 16, true),
    stderr: () => fs.readFileSync(errFile, 'utf8'),
  };
  gateways.add(gw);
  proc.on('exit', () => gateways.delete(gw));
  const m = await waitUntil(() => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before listening\n${gw.stderr()}`);
    }
    return read(outFile, 4096).match(/listening on ([^\s:]+):(\d+)/);
  }, { timeoutMs: 20000, intervalMs: 5, what: `${name} to listen` });
  gw.host = m[1];
  gw.port = Number(m[2]);
  gw.url = `http://${gw.host}:${gw.port}`;
  gw.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return gw;
}

/// Stops a node (SIGTERM, bounded); a node that does not exit cleanly is noted in the results
/// (and killed by stopProcess), not a reason to lose the figures.
const stopProblems = [];
async function stopNode(gw) {
  gw.agent?.destroy();
  const t = performance.now();
  try {
    await stopProcess(gw);
  } catch (e) {
    const tail = gw.tail().split('\n').filter((l) => l && !l.includes('"request"')).slice(-5).join('\n');
    const msg = `${gw.name} did not stop cleanly after ${Math.round(performance.now() - t)} ms: ${e.message.split('\n')[0]}`;
    console.error(`warning: ${msg}\n${tail}`);
    stopProblems.push(msg);
  }
}

// -- HTTP -------------------------------------------------------------------------------------------

/// One request on the node's keep-alive connection; resolves to {status, headers, json, ms}.
function call(gw, method, pathname, { key, body, timeoutMs = 30000 } = {}) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(`${gw.url}${pathname}`, { method, agent: gw.agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms, at: performance.now() });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${pathname} on ${gw.name}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const CHAT_MODEL = 'openai/gpt-4o-mini';
const chatBody = (model) => ({ model, messages: [{ role: 'user', content: 'Hello there, how are you today?' }] });
let emailCounter = 0;
const newEmail = (tag) => `bench-${tag}-${process.pid}-${++emailCounter}@example.com`;

async function signup(gw, tag = gw.name) {
  const r = await call(gw, 'POST', '/v1/users', { body: { email: newEmail(tag) } });
  if (r.status !== 201) throw new Error(`sign-up on ${gw.name}: ${r.status} ${r.text}`);
  return { ...r.json, ms: r.ms };
}

async function addKey(gw, key, provider) {
  const r = await call(gw, 'POST', '/v1/keys', { key, body: { provider, api_key: `sk-bench-${provider}-0123456789abcdef` } });
  if (r.status !== 201 && r.status !== 200) throw new Error(`key write on ${gw.name}: ${r.status} ${r.text}`);
  return r;
}

// -- statistics and formatting -------------------------------------------------------------------------

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] };
}
const f1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(1));
const f2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(2));
const f3 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(3));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// -- CPU time -----------------------------------------------------------------------------------------

const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/// utime + stime (clock ticks) of a process, all its threads, and with `reaped` also the time of
/// its children that exited and were waited for (cutime + cstime); 0 once it is gone.
function cpuTicks(pid, { reaped = false } = {}) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');  // fields[0] is field 3
    const own = Number(fields[11]) + Number(fields[12]);  // fields 14 and 15
    return reaped ? own + Number(fields[13]) + Number(fields[14]) : own;  // 16 and 17
  } catch { return 0; }
}

/// The PostgreSQL server's CPU so far: the postmaster, its live children (backends, writers,
/// autovacuum) and those that exited (the postmaster reaps them: their time moves into its
/// cutime/cstime, so a backend ending during a run is not lost).
function pgTicks(pg) {
  const master = Number(fs.readFileSync(path.join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = cpuTicks(master, { reaped: true });
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === master) ticks += cpuTicks(Number(e));
    } catch { /* exited */ }
  }
  return ticks;
}

// -- wrk --------------------------------------------------------------------------------------------

/// wrk's duration text ("812.00us", "1.23ms", "2.01s") in milliseconds.
function wrkMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2]];
}

function wrkScript(gw, key) {
  const file = path.join(work, `${gw.name}.lua`);
  fs.writeFileSync(file, [
    'wrk.method = "POST"',
    `wrk.body = [[${JSON.stringify(chatBody(CHAT_MODEL))}]]`,
    'wrk.headers["Content-Type"] = "application/json"',
    `wrk.headers["Authorization"] = "Bearer ${key}"`,
    '',
  ].join('\n'));
  return file;
}

function wrk(gw, script, seconds) {
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t1', '-c32', `-d${seconds}s`, '--latency', '-s', script,
      `${gw.url}/v1/chat/completions`], { stdio: ['ignore', 'pipe', 'pipe'] });
    wrks.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', () => wrks.delete(p));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}: ${err}`))));
  });
}

/// VmRSS of a process in MiB.
function rssMiB(pid) {
  try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024; } catch { return NaN; }
}

/// Waits until the node has written every request record of the run: `GET /v1/requests` is
/// answered by the record writer after the batches queued before it (actors/metrics_actor.cpp),
/// so its answer marks the end of the backlog. Resolves to the ms from `since` (bounded).
async function recordsDrained(gw, key, since) {
  const end = performance.now() + 180000;
  for (;;) {
    const r = await call(gw, 'GET', '/v1/requests?limit=1', { key, timeoutMs: 190000 });
    if (r.status === 200) return r.at - since;
    if (performance.now() > end) throw new Error(`${gw.name}: GET /v1/requests still ${r.status} after 180 s: ${r.text}`);
  }
}

/// One measured wrk run against `gw`: requests/s, latency percentiles, CPU per request of the
/// gateway over the run and until its request records are written, and of the PostgreSQL server
/// over the same span (every backend: the hot path must not need it; records are written behind).
async function measureChat(gw, key, script, seconds, pg) {
  const g0 = cpuTicks(gw.proc.pid);
  const p0 = pgTicks(pg);
  const out = await wrk(gw, script, seconds);
  const wrkEnd = performance.now();
  const g1 = cpuTicks(gw.proc.pid);
  const rss = rssMiB(gw.proc.pid);
  const drainMs = await recordsDrained(gw, key, wrkEnd);
  const g2 = cpuTicks(gw.proc.pid);
  const p2 = pgTicks(pg);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const lat = (p) => wrkMs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(out)?.[1] ?? null;
  if (non2xx > 0 || errors) console.error(`warning: ${gw.name}: ${non2xx} non-2xx answers; socket errors: ${errors ?? 'none'}`);
  const us = (ticks) => ((ticks / HZ) * 1e6) / requests;
  return {
    node: gw.name,
    seconds,
    requests,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50_ms: lat(50),
    p90_ms: lat(90),
    p99_ms: lat(99),
    gateway_cpu_us_per_request: us(g1 - g0),
    gateway_cpu_us_per_request_incl_records: us(g2 - g0),
    pg_server_cpu_us_per_request_incl_records: us(p2 - p0),
    records_written_ms_after_run: drainMs,
    gateway_rss_mib_at_end: rss,
    non_2xx: non2xx,
    socket_errors: errors,
  };
}

// -- the run --------------------------------------------------------------------------------------

const BREAKER = {
  consecutive_failures: 2,
  // The ratio rule stays out of the way: every trip adds two failures, and with the recovery
  // probes they would soon be above any ratio.
  window: 100000, min_requests: 100000, window_ms: 30000, failure_ratio: 0.5,
  cooldown_ms: 300, max_cooldown_ms: 600,
};
const PRIMARY = 'groq';
const FALLBACK = 'sarvam';
const TIER = 't/pair';
const PAIR_CONFIG = {
  tiers: { [TIER]: [{ provider: PRIMARY, model: 'llama-3.1-8b-instant' }, { provider: FALLBACK, model: 'sarvam-30b' }] },
  breaker: BREAKER,
};

const started = new Date();
const stamp = started.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
const result = {
  date: started.toISOString(),
  host: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, loadavg_at_start: os.loadavg(), node: process.version },
  commit: (() => { try { return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).toString().trim(); } catch { return null; } })(),
  options: { ...opts, wrk: '-t1 -c32', chat_model: CHAT_MODEL, breaker: BREAKER },
};

let pg;
let mock;
const log = (s) => console.error(`[${((performance.now()) / 1000).toFixed(1)} s] ${s}`);
try {
  log('starting PostgreSQL and the mock provider');
  [pg, mock] = await Promise.all([startPostgres(), startMock(['--record-limit', '0'])]);
  result.postgres = execFileSync(path.join(process.env.IB_PG_BIN ?? '/usr/lib/postgresql/15/bin', 'postgres'), ['--version']).toString().trim();
  const env = mockProviderEnv(mock);

  // -- 1 and 2: one node on LMDB, one on PostgreSQL ---------------------------------------------
  const lmdb = await startNode('lmdb', { env });
  const pgNode = await startNode('pg', { env: { ...env, IB_DATABASE_URL: await pg.createDatabase('ib_bench_single') } });
  const stores = [lmdb, pgNode];
  const scripts = new Map();
  const keys = new Map();
  for (const gw of stores) {
    const u = await signup(gw);
    await addKey(gw, u.api_key, 'openai');
    const r = await call(gw, 'POST', '/v1/chat/completions', { key: u.api_key, body: chatBody(CHAT_MODEL) });
    if (r.status !== 200) throw new Error(`a chat through ${gw.name} answered ${r.status}: ${r.text}`);
    scripts.set(gw, wrkScript(gw, u.api_key));
    keys.set(gw, u.api_key);
  }
  log(`chat throughput: warm-up 2 s each, then ${stores.map((g) => g.name).join(', ')} ×2, ${opts.duration} s each`);
  for (const gw of stores) {
    const t = performance.now();
    await wrk(gw, scripts.get(gw), 2);
    await recordsDrained(gw, keys.get(gw), t);
  }
  const runs = [];
  for (let round = 0; round < 2; ++round) {
    for (const gw of stores) {
      const m = await measureChat(gw, keys.get(gw), scripts.get(gw), opts.duration, pg);
      log(`  ${gw.name}: ${m.rps} requests/s`);
      runs.push({ round: round + 1, ...m });
    }
  }
  const perStore = stores.map((gw) => {
    const rs = runs.filter((r) => r.node === gw.name);
    return {
      node: gw.name,
      rps: mean(rs.map((r) => r.rps)),
      p50_ms: mean(rs.map((r) => r.p50_ms)),
      p99_ms: mean(rs.map((r) => r.p99_ms)),
      gateway_cpu_us_per_request: mean(rs.map((r) => r.gateway_cpu_us_per_request)),
      gateway_cpu_us_per_request_incl_records: mean(rs.map((r) => r.gateway_cpu_us_per_request_incl_records)),
      pg_server_cpu_us_per_request_incl_records: mean(rs.map((r) => r.pg_server_cpu_us_per_request_incl_records)),
      records_written_ms_after_run: mean(rs.map((r) => r.records_written_ms_after_run)),
    };
  });
  result.chat = { runs, mean: perStore, pg_vs_lmdb_rps: perStore[1].rps / perStore[0].rps };

  log('write latency: sign-ups, then key writes, the two nodes alternating');
  for (let i = 0; i < 10; ++i) {
    for (const gw of stores) {
      const u = await signup(gw, 'warm');
      await addKey(gw, u.api_key, 'openai');
    }
  }
  const users = new Map(stores.map((gw) => [gw, []]));
  for (let i = 0; i < 200; ++i) for (const gw of stores) users.get(gw).push(await signup(gw));
  const keyMs = new Map(stores.map((gw) => [gw, []]));
  for (let i = 0; i < 200; ++i) {
    for (const gw of stores) keyMs.get(gw).push((await addKey(gw, users.get(gw)[i].api_key, 'openai')).ms);
  }
  result.writes = stores.map((gw) => ({
    node: gw.name,
    signup_ms: summary(users.get(gw).map((u) => u.ms)),
    key_write_ms: summary(keyMs.get(gw)),
  }));
  for (const gw of stores) await stopNode(gw);

  // -- 3: breaker propagation between two PostgreSQL nodes ------------------------------------------
  const url = await pg.createDatabase('ib_bench_pair');
  const a = await startNode('a', { env: { ...env, IB_DATABASE_URL: url }, config: PAIR_CONFIG });
  const b = await startNode('b', { env: { ...env, IB_DATABASE_URL: url }, config: PAIR_CONFIG });
  // Node B polls /readyz on its own connection, so a chat on the default one never waits for it.
  const bReady = { ...b, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
  const u = await signup(a);
  await addKey(a, u.api_key, PRIMARY);
  await addKey(a, u.api_key, FALLBACK);
  const chat = (gw) => call(gw, 'POST', '/v1/chat/completions', { key: u.api_key, body: chatBody(TIER) });
  await waitUntil(async () => (await chat(b)).status === 200, { timeoutMs: 5000, what: 'node B to know the user' });
  const state = async (gw) => (await call(gw, 'GET', '/readyz')).json?.providers?.[PRIMARY];
  const received = async () => (await mockStats(mock)).requests[PRIMARY] ?? 0;

  log(`breaker propagation: ${opts.trips} trips`);
  const trips = [];
  for (let trip = 1; trip <= opts.trips; ++trip) {
    for (const gw of [a, b]) {
      await waitUntil(async () => (await state(gw)) === 'closed', { timeoutMs: 10000, what: `${PRIMARY} closed on ${gw.name}` });
    }
    await mockScript(mock, PRIMARY, Array(BREAKER.consecutive_failures).fill({ status: 500 }));
    // Through A until the response that opened its breaker (the second 500 in a row).
    let t0;
    let failed = 0;
    for (let i = 0; i < 10 && failed < BREAKER.consecutive_failures; ++i) {
      const r = await chat(a);
      if (r.status !== 200) throw new Error(`a chat through A answered ${r.status}: ${r.text}`);
      if (r.headers['x-inferbridge-attempts'] === `${PRIMARY}=500;${FALLBACK}=200`) ++failed;
      t0 = r.at;
    }
    if (failed < BREAKER.consecutive_failures) throw new Error(`trip ${trip}: the mock did not fail ${PRIMARY} twice`);
    // B's readyz back to back until it no longer says `closed`.
    let seen;
    let t1;
    const deadline = t0 + 5000;
    for (;;) {
      const r = await call(bReady, 'GET', '/readyz');
      seen = r.json?.providers?.[PRIMARY];
      if (seen !== 'closed') { t1 = r.at; break; }
      if (r.at > deadline) break;
    }
    const aState = await state(a);
    // Chats through B while the breaker is open (within 60 % of the cooldown from t0): any
    // request the mock receives for the provider meanwhile comes from B (A gets none).
    const before = await received();
    const tokens = [];
    while (t1 !== undefined && tokens.length < 5 && performance.now() - t0 < 0.6 * BREAKER.cooldown_ms) {
      tokens.push((await chat(b)).headers['x-inferbridge-attempts']);
    }
    const fromB = (await received()) - before;
    const sample = {
      trip,
      ms: t1 === undefined ? null : t1 - t0,
      b_state: seen,
      a_state_after: aState,
      b_chats_while_open: tokens.length,
      b_chats_skipped: tokens.filter((x) => x === `${PRIMARY}=circuit_open;${FALLBACK}=200`).length,
      mock_requests_from_b_while_open: fromB,
    };
    trips.push(sample);
    if (t1 === undefined) log(`  trip ${trip}: B did not see the breaker open within 5 s`);
    // Recovery: after the cooldown the mock answers normally again, so the single probe (through
    // whichever node wins the lease) closes the breaker everywhere.
    await waitUntil(() => performance.now() - t0 >= BREAKER.cooldown_ms, { timeoutMs: 2000, intervalMs: 5, what: 'the cooldown' });
    await waitUntil(async () => {
      await chat(a);
      await chat(b);
      return (await state(a)) === 'closed' && (await state(b)) === 'closed';
    }, { timeoutMs: 10000, intervalMs: 5, what: `${PRIMARY} to recover on both nodes` });
  }
  const ok = trips.filter((t) => t.ms !== null);
  result.breaker = {
    trips,
    propagation_ms: ok.length ? summary(ok.map((t) => t.ms)) : null,
    missed: trips.length - ok.length,
    b_chats_while_open: trips.reduce((s, t) => s + t.b_chats_while_open, 0),
    b_chats_skipped: trips.reduce((s, t) => s + t.b_chats_skipped, 0),
    mock_requests_from_b_while_open: trips.reduce((s, t) => s + t.mock_requests_from_b_while_open, 0),
  };
  bReady.agent.destroy();
  for (const gw of [a, b]) await stopNode(gw);
} finally {
  await Promise.all([...gateways].map((gw) => stopNode(gw)));
  result.stop_problems = stopProblems;
  if (mock) await stopProcess(mock).catch(() => {});
  if (pg) await pg.destroy();
  fs.rmSync(work, { recursive: true, force: true });
}

// -- report -------------------------------------------------------------------------------------------

const { chat, writes, breaker } = result;
const lines = [];
lines.push(`InferBridge cluster benchmark — ${result.date.slice(0, 16)}Z, ${result.host.cores} cores, `
  + `load average at start ${result.host.loadavg_at_start.map((x) => x.toFixed(2)).join(' ')}, ${result.postgres}, commit ${result.commit}`);
lines.push('');
lines.push(`1. Chat throughput, one node each store, wrk -t1 -c32 -d${opts.duration}s, non-streamed \`${CHAT_MODEL}\`, runs in this order`);
lines.push('');
const store = (n) => (n === 'pg' ? 'PostgreSQL' : 'LMDB');
lines.push(table(['run', 'store', 'requests/s', 'p50 ms', 'p90 ms', 'p99 ms', 'gateway CPU µs/req', 'gateway CPU µs/req incl. records',
  'PostgreSQL server CPU µs/req', 'records written, ms after the run', 'gateway RSS MiB'],
  chat.runs.map((r, i) => [i + 1, store(r.node), f1(r.rps), f3(r.p50_ms), f3(r.p90_ms), f3(r.p99_ms),
    f1(r.gateway_cpu_us_per_request), f1(r.gateway_cpu_us_per_request_incl_records),
    f1(r.pg_server_cpu_us_per_request_incl_records), f1(r.records_written_ms_after_run), f1(r.gateway_rss_mib_at_end)])));
lines.push('');
lines.push(table(['store (mean of 2 runs)', 'requests/s', 'p50 ms', 'p99 ms', 'gateway CPU µs/req', 'gateway CPU µs/req incl. records',
  'PostgreSQL server CPU µs/req', 'records written, ms after the run'],
  chat.mean.map((r) => [store(r.node), f1(r.rps), f3(r.p50_ms), f3(r.p99_ms), f1(r.gateway_cpu_us_per_request),
    f1(r.gateway_cpu_us_per_request_incl_records), f1(r.pg_server_cpu_us_per_request_incl_records), f1(r.records_written_ms_after_run)])));
lines.push('');
lines.push(`PostgreSQL / LMDB requests/s: ${f3(chat.pg_vs_lmdb_rps)}`);
lines.push('');
lines.push('2. Write latency, 200 sequential requests per node after 10 warm-up, the two nodes alternating (ms, client-observed)');
lines.push('');
lines.push(table(['write', 'store', 'p50', 'p90', 'p99', 'max'],
  writes.flatMap((w) => [
    ['sign-up `POST /v1/users`', store(w.node), f2(w.signup_ms.p50), f2(w.signup_ms.p90), f2(w.signup_ms.p99), f2(w.signup_ms.max)],
    ['new key `POST /v1/keys`', store(w.node), f2(w.key_write_ms.p50), f2(w.key_write_ms.p90), f2(w.key_write_ms.p99), f2(w.key_write_ms.max)],
  ])));
lines.push('');
lines.push(`3. Breaker propagation, two PostgreSQL nodes: A's breaker opening (the response that opened it) → B's /readyz showing it, ${opts.trips} trips `
  + `(consecutive_failures ${BREAKER.consecutive_failures}, cooldown ${BREAKER.cooldown_ms} ms)`);
lines.push('');
const pm = breaker.propagation_ms;
lines.push(table(['trips seen on B', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'chats through B while open', 'of them skipped (circuit_open)', `requests at the mock for ${PRIMARY} from B while open`],
  [[`${pm?.n ?? 0} of ${opts.trips}`, f2(pm?.p50), f2(pm?.p90), f2(pm?.p99), f2(pm?.max), breaker.b_chats_while_open, breaker.b_chats_skipped, breaker.mock_requests_from_b_while_open]]));
const states = [...new Set(breaker.trips.map((t) => t.b_state))];
lines.push('');
lines.push(`B's state when first seen: ${states.join(', ')}`);
if (result.stop_problems?.length) {
  lines.push('');
  lines.push(`Nodes that did not stop cleanly on SIGTERM: ${result.stop_problems.join('; ')}`);
}
console.log(lines.join('\n'));

const dir = path.join(here, 'results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `cluster-${stamp}.json`);
fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log('');
console.log(`JSON: ${path.relative(root, file)}`);
