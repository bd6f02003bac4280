// Starting and stopping the real binaries for end-to-end tests.
// Each binary prints `listening on HOST:PORT` as its first stdout line; we wait for it with a
// bounded timeout (never a fixed sleep).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');
/// The build directory holding `inferbridge` and `bench/mock_provider` (IB_BUILD_DIR or build-test).
export const buildDir = process.env.IB_BUILD_DIR
  ? path.resolve(process.env.IB_BUILD_DIR)
  : path.join(repoRoot, 'build-test');

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/// Spawns `file` with `args`/`env`; resolves to {proc, host, port, url, stderr(), stdout()} once it
/// printed its listening line. Rejects if it exits first or `timeoutMs` passes.
export function startProcess(file, args = [], { env = {}, timeoutMs = 15000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(file, args, {
      env: { ...process.env, ...env },
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(proc);
    let out = '';
    let err = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        proc.kill('SIGKILL');
        reject(new Error(`${path.basename(file)} did not report listening within ${timeoutMs} ms\n${err}`));
      }
    }, timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d.toString();
      if (done) return;
      const m = out.match(/listening on ([^\s:]+):(\d+)/);
      if (m) {
        done = true;
        clearTimeout(timer);
        const host = m[1];
        const port = Number(m[2]);
        resolve({
          proc, host, port, url: `http://${host}:${port}`,
          stdout: () => out, stderr: () => err,
        });
      }
    });
    proc.stderr.on('data', (d) => { err += d.toString(); });
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      if (done && !proc.stopping) {
        // An unexpected exit: show why, so a failing test says more than "connection refused".
        process.stderr.write(`\n[${path.basename(file)} exited unexpectedly (${code ?? signal})]\n${err.slice(-8000)}\n`);
      }
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`${path.basename(file)} exited (${code ?? signal}) before listening\n${err}`));
      }
    });
  });
}

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|Sanitizer:DEADLYSIGNAL/;

/// Stops a started process: SIGTERM (or `signal`), then waits for it to exit (SIGKILL after
/// `timeoutMs`). Resolves to the exit code or signal; rejects if the process reported a
/// sanitizer error (ASan, LSan, UBSan) at any time, or did not exit cleanly on SIGTERM.
export function stopProcess(p, { signal = 'SIGTERM', timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const verdict = (code) => {
      const err = p?.stderr?.() ?? '';
      if (SANITIZER.test(err)) {
        reject(new Error(`${path.basename(p.proc.spawnfile)} reported a sanitizer error:\n${err}`));
      } else if (signal === 'SIGTERM' && p.killed) {
        reject(new Error(`${path.basename(p.proc.spawnfile)} did not exit within ${timeoutMs} ms of SIGTERM:\n${err}`));
      } else if (signal === 'SIGTERM' && code !== 0 && code !== null) {
        reject(new Error(`${path.basename(p.proc.spawnfile)} exited with ${code} on SIGTERM:\n${err}`));
      } else {
        resolve(code);
      }
    };
    if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) {
      verdict(p?.proc.exitCode ?? p?.proc.signalCode);
      return;
    }
    p.proc.stopping = true;
    const timer = setTimeout(() => { p.killed = true; p.proc.kill('SIGKILL'); }, timeoutMs);
    p.proc.once('exit', (code, sig) => { clearTimeout(timer); verdict(code ?? sig); });
    p.proc.kill(signal);
  });
}

/// Polls `cond` (sync or async) until it returns a truthy value or `timeoutMs` passes.
export async function waitUntil(cond, { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/// Starts bench/mock_provider on an ephemeral loopback port.
export function startMock(args = []) {
  return startProcess(path.join(buildDir, 'bench', 'mock_provider'), ['--listen', '127.0.0.1:0', ...args]);
}

/// Every file below `dir` (recursively), as paths.
export function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/// A TCP port that was free on 127.0.0.1 a moment ago, for servers that cannot bind port 0 and
/// report it (Prometheus, PostgreSQL); the caller retries on the rare collision.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
