// A real Prometheus server (Debian's `prometheus` package) for end-to-end tests: started on a
// loopback ephemeral port with a temporary TSDB and a generated config, queried through its HTTP
// API, stopped after. Also runs `promtool`. Nothing sleeps: readiness and results are polled with
// bounded waits.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort, repoRoot, stopProcess, waitUntil } from './procs.mjs';

/// The shipped operator files (metrics/grafana, metrics/prometheus).
export const DASHBOARD_FILE = path.join(repoRoot, 'metrics', 'grafana', 'inferbridge.json');
export const ALERTS_FILE = path.join(repoRoot, 'metrics', 'prometheus', 'alerts.yml');
export const SAMPLE_CONFIG_FILE = path.join(repoRoot, 'metrics', 'prometheus', 'prometheus.yml');

const INSTALL_HINT = 'install Debian\'s "prometheus" package (scripts/install-deps.sh --test does)';

/// The absolute path of `name` on PATH; throws a clear error naming the package when it is absent.
export function requireTool(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch { /* not here */ }
  }
  throw new Error(`\`${name}\` is not installed: ${INSTALL_HINT}`);
}

/// The YAML of a Prometheus config scraping `targets` (["host:port", ...]) every
/// `scrapeIntervalS` seconds and evaluating `ruleFiles` (absolute paths) as often. JSON is YAML.
export function prometheusConfig({ targets, scrapeIntervalS = 1, ruleFiles = [] }) {
  return JSON.stringify({
    global: {
      scrape_interval: `${scrapeIntervalS}s`,
      scrape_timeout: `${scrapeIntervalS}s`,
      evaluation_interval: `${scrapeIntervalS}s`,
    },
    rule_files: ruleFiles,
    scrape_configs: [{
      job_name: 'inferbridge',
      metrics_path: '/metrics',
      static_configs: [{ targets }],
    }],
  }, null, 2);
}

/// Starts Prometheus on 127.0.0.1 scraping `targets`; resolves once `/-/ready` answers 200 to
/// {url, port, dir, proc, stderr(), stop()}. Throws if `prometheus` is not installed, or if it
/// does not become ready within `timeoutMs`.
export async function startPrometheus({ targets, ruleFiles = [], scrapeIntervalS = 1, timeoutMs = 15000 }) {
  const bin = requireTool('prometheus');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ib-prom-'));
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, prometheusConfig({ targets, scrapeIntervalS, ruleFiles }));
  let lastError;
  for (let attempt = 0; attempt < 3; ++attempt) {
    const port = await freePort();
    const proc = spawn(bin, [
      `--config.file=${configFile}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d.toString(); });
    const exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig)));
    let gone;
    exited.then((c) => { gone = c; });
    const url = `http://127.0.0.1:${port}`;
    const p = {
      proc, port, url, dir, stderr: () => err,
      async stop() {
        // stopProcess expects the shape procs.mjs gives: it checks stderr for sanitizer reports,
        // which Prometheus never prints.
        await stopProcess(p, { timeoutMs: 5000 });
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
    try {
      await waitUntil(async () => {
        if (gone !== undefined) throw new Error(`prometheus exited (${gone}):\n${err}`);
        try {
          return (await fetch(`${url}/-/ready`)).status === 200;
        } catch {
          return false;  // not listening yet
        }
      }, { timeoutMs, intervalMs: 50, what: `prometheus ready on ${url}` });
      return p;
    } catch (e) {
      lastError = e;
      if (gone === undefined) proc.kill('SIGKILL');
      await exited;
      if (!/address already in use/.test(err)) break;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

/// Evaluates `expr` at the current time through `GET /api/v1/query`. Resolves to the API's JSON
/// body: {status: "success", data: {resultType, result}} or {status: "error", errorType, error}.
export async function query(prom, expr) {
  const r = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return r.json();
}

/// Evaluates `expr` and returns its vector as a map from the JSON of the chosen `labels`' values
/// (in that order) to the sample's number; throws on a query error.
export async function vectorByLabels(prom, expr, labels) {
  const body = await query(prom, expr);
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  const out = {};
  for (const s of body.data.result) {
    out[labels.map((l) => s.metric[l] ?? '').join('|')] = Number(s.value[1]);
  }
  return out;
}

/// Runs `promtool args...` with `input` on stdin; returns {status, stdout, stderr}.
export function promtool(args, input) {
  const r = spawnSync(requireTool('promtool'), args, { input, encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
