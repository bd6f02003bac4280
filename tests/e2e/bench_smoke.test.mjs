// Smoke run of the load-testing harness (bench/harness.sh, issue 17): --quick against the
// binaries of IB_BUILD_DIR (no rebuild), every scenario and every path, with an "other gateway"
// given on the command line (the mock itself, through --other-url/--other-header/--other-body and
// a fixed --mock-port). Checks that it writes its Markdown, its JSON (every row present, every
// figure finite) and its plots. No timing assertion: the figures of a shared CI machine mean
// nothing; only that the harness measures what it says. Then the harness's stream client
// (bench/stream_client) on its own, against a server that writes its answers a byte per write.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';

import { buildDir, freePort, repoRoot, waitUntil } from './lib/procs.mjs';

const TOOLS = ['wrk', 'nginx', 'gnuplot', 'openssl'];

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
      assert.match(md, /\| chunk latency p50 \| chunk latency p99 \| added chunk latency p50 \| added chunk latency p99 \|/);
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
        assert.ok(st.events_per_stream >= 5, `stream ${s}: ${st.events_per_stream} events per stream`);
        assert.equal(typeof st.errors_by_kind, 'object', `stream ${s}: errors by kind`);
        for (const k of ['ttfb_ms', 'ttft_ms', 'gap_ms']) {
          for (const p of ['p50', 'p99']) assert.ok(finite(st[k][p]), `stream ${s} ${k}.${p}`);
        }
        assert.ok(st.chunks_per_stream >= 3, `stream ${s}: ${st.chunks_per_stream} reads per stream`);
        // Each content chunk's latency from the mock's send time (the stream model's `stamp`).
        assert.ok(st.chunk_latency_count >= st.requests, `stream ${s}: ${st.chunk_latency_count} stamped chunks`);
        for (const p of ['p50', 'p90', 'p99', 'p999']) {
          assert.ok(finite(st.chunk_latency_ms[p]) && st.chunk_latency_ms[p] >= 0, `stream ${s} chunk_latency_ms.${p}`);
        }
        if (s !== 'direct') {
          for (const p of ['p50', 'p99']) {
            assert.ok(finite(st.added_chunk_latency_ms?.[p]), `stream ${s} added_chunk_latency_ms.${p}`);
          }
        }
        loadRows.push(st);
        const os_ = row('open-streams', s);
        assert.equal(os_.open_at_end, os_.concurrency, `open-streams ${s}: all streams held`);
        assert.equal(os_.errors, 0, `open-streams ${s}: errors`);
        assert.equal(os_.samples.length, 5, `open-streams ${s}: RSS samples`);
        if (s !== other) assert.ok(finite(os_.kib_per_stream), `open-streams ${s}: KiB per stream`);
      }
      // The same held streams through the gateway to an HTTPS upstream (nginx terminating TLS).
      const https = row('open-streams', 'inferbridge-https');
      assert.equal(https.open_at_end, https.concurrency, 'open-streams over HTTPS: all streams held');
      assert.equal(https.errors, 0, 'open-streams over HTTPS: errors');
      assert.equal(https.samples.length, 5, 'open-streams over HTTPS: RSS samples');
      assert.ok(finite(https.kib_per_stream) && finite(https.peak_rss_kb), 'open-streams over HTTPS: memory');
      assert.match(md, /\| inferbridge-https \| /);
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
        // No verdict only for an "added" figure the reference row's noise made negative.
        if (t.holds === null) assert.ok(t.value < 0 && /added/.test(t.what), `target "${t.what}"`);
        else assert.equal(typeof t.holds, 'boolean', `target "${t.what}"`);
      }
      for (const k of ['cpu_ib_over_nginx_c64', 'rps_ib_over_nginx_c64', 'cpu_anthropic_over_openai']) {
        assert.ok(finite(res.ratios[k]), `ratio ${k}`);
      }

      // The header names the allocator the gateway runs with: the one its binary links.
      const linked = spawnSync('ldd', [path.join(buildDir, 'inferbridge')], { encoding: 'utf8' }).stdout;
      const expected = [['libasan', 'asan'], ['libjemalloc', 'jemalloc'], ['libtcmalloc', 'tcmalloc']]
        .find(([lib]) => linked.includes(lib))?.[1] ?? 'glibc';
      assert.equal(res.meta.allocator, expected);
      assert.ok(md.includes(`(the gateway's allocator: ${expected})`), 'the Markdown names the allocator');

      for (const png of ['latency.png', 'cpu.png', 'rss.png']) {
        const b = fs.readFileSync(path.join(out, png));
        assert.ok(b.length > 1000, `${png} is ${b.length} bytes`);
        assert.deepEqual([...b.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${png} is a PNG`);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

// -- bench/stream_client on its own ----------------------------------------------------------------

const streamClient = path.join(buildDir, 'bench', 'stream_client');

const sse = (delta, finish = null) => `data: ${JSON.stringify({ object: 'chat.completion.chunk',
  choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
/// A role event, three with text, the finish and [DONE]: 6 events, 3 with content.
const EVENTS = [sse({ role: 'assistant', content: '' }), sse({ content: 'Hel' }), sse({ content: 'lo ' }),
  sse({ content: '"you"' }), sse({}, 'stop'), 'data: [DONE]\n\n'];

/// EVENTS with the mock's `stamp` field: a send time (CLOCK_MONOTONIC ns, as Node's hrtime on
/// Linux) taken when the answer is made, so that every latency is positive.
const stampedEvents = () => EVENTS.map((e) => e.replace('data: {', `data: {"x_mock_sent_ns":${process.hrtime.bigint()},`));

/// The raw response for `kind` (the request path).
function answer(kind) {
  const head = (h) => `HTTP/1.1 ${h}\r\n\r\n`;
  const body = EVENTS.join('');
  switch (kind) {
    case '/stamped':  // as /chunked, each JSON event carrying its send time
      return head('200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked')
        + stampedEvents().map((e) => `${Buffer.byteLength(e).toString(16)}\r\n${e}\r\n`).join('') + '0\r\n\r\n';
    case '/chunked':  // one chunk per event, an extension, a trailer
      return head('200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked')
        + EVENTS.map((e, i) => `${Buffer.byteLength(e).toString(16)}${i === 1 ? ';x=1' : ''}\r\n${e}\r\n`).join('')
        + '0\r\nx-trailer: 1\r\n\r\n';
    case '/length':
      return head(`200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}`) + body;
    case '/close':  // delimited by the end of the connection
      return head('200 OK\r\nContent-Type: text/event-stream\r\nConnection: close') + body;
    case '/no-content':
      return head('200 OK\r\nTransfer-Encoding: chunked') + [EVENTS[0], EVENTS[5]]
        .map((e) => `${Buffer.byteLength(e).toString(16)}\r\n${e}\r\n`).join('') + '0\r\n\r\n';
    case '/status':
      return head('503 Service Unavailable\r\nContent-Length: 2') + '{}';
    case '/hold':  // the head and one event, then nothing until the client leaves
      return head('200 OK\r\nTransfer-Encoding: chunked') + `${Buffer.byteLength(EVENTS[1]).toString(16)}\r\n${EVENTS[1]}\r\n`;
    default:
      return head('404 Not Found\r\nContent-Length: 0');
  }
}

/// A server that reads each request (head and Content-Length body) and writes its answer a byte
/// per event-loop turn, so that the client's reads split it everywhere.
async function dribbleServer() {
  const sockets = new Set();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const headText = buf.subarray(0, end).toString();
        const len = Number((headText.match(/content-length:\s*(\d+)/i) ?? [0, 0])[1]);
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        const kind = headText.split(' ')[1];
        const bytes = Buffer.from(answer(kind));
        const keep = kind !== '/close' && kind !== '/hold';
        let i = 0;
        const next = () => {
          if (sock.destroyed) return;
          if (i < bytes.length) {
            sock.write(bytes.subarray(i, i + 1));
            i += 1;
            setImmediate(next);
          } else if (kind === '/close') {
            sock.end();
          }
        };
        next();
        if (!keep) return;
      }
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    sockets,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(r); }),
  };
}

/// Runs stream_client (asynchronously: the server lives in this process); resolves to its JSON.
async function runClient(args) {
  const p = spawn(streamClient, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
  const code = await new Promise((r) => p.once('exit', (c, sig) => r(c ?? sig)));
  clearTimeout(timer);
  assert.equal(code, 0, `stream_client ${args.join(' ')}: ${code}\n${err}`);
  return JSON.parse(out);
}

test('bench/stream_client decodes chunked, Content-Length and close-delimited streams split across many reads',
  { timeout: 120000 }, async () => {
    assert.ok(fs.existsSync(streamClient), `${streamClient} is missing: build the stream_client target`);
    const srv = await dribbleServer();
    try {
      const base = ['--body', '{"stream":true}', '--header', 'Authorization: Bearer sk-x', '--duration', '0.3',
        '--connections', '2'];
      for (const kind of ['/chunked', '/length', '/close']) {
        const r = await runClient(['--url', `${srv.url}${kind}`, ...base]);
        assert.ok(r.requests >= 2, `${kind}: ${r.requests} streams`);
        assert.equal(r.errors, 0, `${kind}: errors ${JSON.stringify(r.errors_by_kind)}`);
        assert.equal(r.events_per_stream, 6, `${kind}: events per stream`);
        assert.ok(r.reads_per_stream >= 6, `${kind}: ${r.reads_per_stream} reads per stream`);
        for (const k of ['ttfb_ms', 'ttft_ms', 'gap_ms']) assert.ok(finite(r[k].p50) && r[k].p50 >= 0, `${kind}: ${k}`);
        assert.ok(r.ttft_ms.p50 >= r.ttfb_ms.p50, `${kind}: first content before first byte`);
        assert.ok(finite(r.cpu_us_per_stream), `${kind}: client CPU`);
        assert.equal(r.chunk_latency_count, 0, `${kind}: no send times, no chunk latency`);
        assert.equal(r.chunk_latency_ms.p50, null, `${kind}: chunk latency without samples`);
        // Keep-alive reuses the connections; a close-delimited body needs one per stream.
        assert.equal(r.connects, kind === '/close' ? r.requests : 2, `${kind}: connects`);
      }
      // Send times in the events (split across reads like the rest): one latency per content event.
      const sd = await runClient(['--url', `${srv.url}/stamped`, ...base]);
      assert.ok(sd.requests >= 2 && sd.errors === 0, `stamped: ${JSON.stringify(sd)}`);
      assert.equal(sd.chunk_latency_count, 3 * sd.requests, 'stamped: one latency per content event');
      for (const p of ['p50', 'p99']) {
        assert.ok(finite(sd.chunk_latency_ms[p]) && sd.chunk_latency_ms[p] > 0, `stamped: chunk_latency_ms.${p}`);
      }
      const nc = await runClient(['--url', `${srv.url}/no-content`, ...base]);
      assert.ok(nc.requests === 0 && nc.errors_by_kind.no_content > 0 && nc.errors === nc.errors_by_kind.no_content,
        `no content: ${JSON.stringify(nc)}`);
      const st = await runClient(['--url', `${srv.url}/status`, ...base]);
      assert.ok(st.requests === 0 && st.errors_by_kind.status > 0 && st.errors === st.errors_by_kind.status,
        `503: ${JSON.stringify(st)}`);

      // Hold mode: two steps, then close on the end of stdin.
      const hold = spawn(streamClient, ['--hold', '--url', `${srv.url}/hold`, '--body', '{}'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      hold.stdout.on('data', (d) => { out += d; });
      hold.stderr.on('data', (d) => { err += d; });
      const exited = new Promise((r) => hold.once('exit', r));
      hold.stdin.write('open 3\n');
      await waitUntil(() => /^open 3 /m.test(out), { timeoutMs: 20000, what: `open 3: ${out}${err}` });
      assert.match(out, /^open 3 ok=3 failed=0 ended=0 pending=0$/m);
      hold.stdin.write('open 5\n');
      await waitUntil(() => /^open 5 /m.test(out), { timeoutMs: 20000, what: `open 5: ${out}${err}` });
      assert.match(out, /^open 5 ok=5 failed=0 ended=0 pending=0$/m);
      assert.equal(srv.sockets.size, 5, 'one connection per held stream');
      hold.stdin.end();
      assert.equal(await exited, 0, err);
      const sum = JSON.parse(out.trim().split('\n').at(-1));
      assert.deepEqual([sum.streams, sum.open, sum.failed, sum.ended], [5, 5, 0, 0]);
      await waitUntil(() => srv.sockets.size === 0, { timeoutMs: 10000, what: 'the held connections to close' });
    } finally {
      await srv.close();
    }
  });
