// Smoke run of the load-testing harness (bench/harness.sh, issue 17): --quick against the
// binaries of IB_BUILD_DIR (no rebuild), every scenario and every path, with an "other gateway"
// given on the command line (the mock itself, through --other-url/--other-header/--other-body and
// a fixed --mock-port). Checks that it writes its Markdown, its JSON (every row present, every
// figure finite) and its plots. No timing assertion: the figures of a shared CI machine mean
// nothing; only that the harness measures what it says.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';

import { buildDir, freePort, repoRoot } from './lib/procs.mjs';

const TOOLS = ['wrk', 'nginx', 'gnuplot'];

function runHarness(args, timeoutMs) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(repoRoot, 'bench', 'harness.mjs'), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { err += `\n[killed after ${timeoutMs} ms]`; p.kill('SIGKILL'); }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, out, err });
    });
  });
}

const finite = (x) => typeof x === 'number' && Number.isFinite(x);

test('bench/harness.sh --quick measures every scenario and path and writes md, json and plots',
  { timeout: 300000 }, async () => {
    const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0
      && !fs.existsSync(path.join('/usr/sbin', t)));
    assert.deepEqual(missing, [],
      `the harness needs ${missing.join(', ')}: install them with scripts/install-deps.sh --test`);

    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ib-bench-smoke-'));
    const body = path.join(out, 'other-body.json');
    fs.writeFileSync(body, JSON.stringify({
      model: '{model}', messages: [{ role: 'user', content: 'Hello from the other gateway' }],
    }));
    const mockPort = await freePort();
    const other = 'mock-as-other';
    try {
      const r = await runHarness([
        '--quick', '--no-build', '--build-dir', buildDir, '--out', out, '--mock-port', String(mockPort),
        '--other-url', `http://127.0.0.1:${mockPort}/openai/v1/chat/completions`,
        '--other-header', 'Authorization: Bearer sk-smoke-0123456789abcdef',
        '--other-body', body, '--other-name', other,
      ], 240000);
      assert.equal(r.code, 0, `harness failed:\n${r.err.slice(-6000)}\n${r.out.slice(-2000)}`);

      const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
      assert.match(md, /\| what \| target \| measured \| holds\? \|/);
      assert.match(md, /## Non-streamed chat/);
      assert.match(md, /## Streamed chat/);
      assert.match(md, /## Memory: open streams and idle/);
      assert.equal(r.out, md, 'the Markdown is also printed on stdout');

      const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
      const row = (scenario, system, c, label) => {
        const x = res.rows.find((e) => e.scenario === scenario && e.system === system
          && (c === undefined || e.concurrency === c) && (label === undefined || e.label === label));
        assert.ok(x, `row ${scenario} ${system} ${c ?? ''} ${label ?? ''} is missing`);
        return x;
      };
      const paths = ['direct', 'nginx', 'inferbridge', other];
      const proxies = ['nginx', 'inferbridge'];
      const loadRows = [];
      for (const s of paths) {
        for (const [scenario, c] of [['chat-fast', 1], ['chat-fast', 64], ['chat-50ms', 256]]) {
          const x = row(scenario, s, c);
          for (const k of ['p50', 'p90', 'p99', 'p999']) assert.ok(finite(x.latency_ms[k]), `${scenario} ${s} ${k}`);
          loadRows.push(x);
        }
        const st = row('stream', s, 16);
        for (const k of ['ttfb_ms', 'ttft_ms', 'gap_ms']) {
          for (const p of ['p50', 'p99']) assert.ok(finite(st[k][p]), `stream ${s} ${k}.${p}`);
        }
        assert.ok(st.chunks_per_stream >= 3, `stream ${s}: ${st.chunks_per_stream} reads per stream`);
        loadRows.push(st);
        const os_ = row('open-streams', s);
        assert.equal(os_.open_at_end, os_.concurrency, `open-streams ${s}: all streams held`);
        assert.equal(os_.errors, 0, `open-streams ${s}: errors`);
        assert.equal(os_.samples.length, 5, `open-streams ${s}: RSS samples`);
        if (s !== other) assert.ok(finite(os_.kib_per_stream), `open-streams ${s}: KiB per stream`);
      }
      for (const label of ['inferbridge success', 'inferbridge 503→success']) {
        loadRows.push(row('fallback', 'inferbridge', 1, label));
      }
      for (const label of ['inferbridge openai', 'inferbridge anthropic']) {
        loadRows.push(row('translation', 'inferbridge', 64, label));
      }
      for (const x of loadRows) {
        const name = `${x.scenario} ${x.label} c=${x.concurrency}`;
        assert.ok(x.requests > 0, `${name}: no requests`);
        assert.equal(x.errors, 0, `${name}: errors`);
        for (const k of ['rps', 'loadgen_cpu_us_per_req', 'mock_cpu_us_per_req', 'pool_reuse_pct']) {
          assert.ok(finite(x[k]), `${name}: ${k} = ${x[k]}`);
        }
        assert.ok(Number.isInteger(x.upstream_conns), `${name}: upstream_conns`);
        if (proxies.includes(x.system)) {
          assert.ok(finite(x.proxy_cpu_us_per_req), `${name}: proxy CPU`);
          assert.ok(finite(x.peak_rss_kb) && x.peak_rss_kb > 0, `${name}: peak RSS`);
        }
        if (x.system !== 'direct' && x.latency_ms && x.scenario.startsWith('chat')) {
          assert.ok(finite(x.added_ms.p50) && finite(x.added_ms.p99), `${name}: added latency`);
        }
      }
      for (const s of proxies) {
        assert.ok(finite(row('idle', s).rss_kb), `idle ${s}`);
        assert.ok(finite(row('open-streams', s).peak_rss_kb), `open-streams ${s} peak RSS`);
      }
      assert.ok(res.targets.length >= 12);
      for (const t of res.targets) {
        assert.ok(finite(t.value), `target "${t.what}" not measured`);
        assert.equal(typeof t.holds, 'boolean', `target "${t.what}"`);
      }
      for (const k of ['cpu_ib_over_nginx_c64', 'rps_ib_over_nginx_c64', 'cpu_anthropic_over_openai']) {
        assert.ok(finite(res.ratios[k]), `ratio ${k}`);
      }

      for (const png of ['latency.png', 'cpu.png', 'rss.png']) {
        const b = fs.readFileSync(path.join(out, png));
        assert.ok(b.length > 1000, `${png} is ${b.length} bytes`);
        assert.deepEqual([...b.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${png} is a PNG`);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
