// One real PostgreSQL 15 for the end-to-end tests: `initdb` into a fresh temp dir, listening on a
// free loopback port (and a unix socket in that dir), with an ordinary login role `inferbridge`
// that owns the databases the tests create. The Debian package's own cluster is never touched.
// initdb refuses to run as root, so under root the server runs as the `postgres` system user.
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort } from './procs.mjs';

/// Where the PostgreSQL 15 server binaries live (Debian's postgresql-15).
export const PG_BIN = process.env.IB_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/// The ordinary (non-superuser) role the gateway connects as.
export const PG_ROLE = 'inferbridge';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

// Clusters still running when the process ends are shut down and removed; on SIGINT/SIGTERM too
// (exiting then also runs the other modules' exit handlers, which kill the gateways).
const live = new Set();
process.on('exit', () => {
  for (const pg of live) pg.destroySync();
});
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.once(sig, () => process.exit(code));
}

/// Runs `file` (as the `postgres` system user when we are root); resolves to stdout, rejects with
/// stderr on a non-zero exit or after `timeoutMs`.
function run(file, args, { timeoutMs = 30000, cwd, server = true, env = {} } = {}) {
  const [cmd, argv] = server && asRoot
    ? ['runuser', ['-u', 'postgres', '--', file, ...args]]
    : [file, args];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, {
      cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, LC_ALL: 'C', PGCONNECT_TIMEOUT: '5', ...env },
    }, (err, stdout, stderr) => {
      if (err) {
        const why = err.killed ? `timed out after ${timeoutMs} ms` : `exit ${err.code ?? err.signal}`;
        reject(new Error(`${path.basename(file)} ${args.join(' ')}: ${why}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/// `psql -X -A -t -v ON_ERROR_STOP=1` on `url` (a libpq URL or connection string); resolves to
/// its stdout (rows one a line, columns separated by `|`), rejects on an SQL or connection error.
export function psql(url, sql, { timeoutMs = 15000 } = {}) {
  return run(path.join(PG_BIN, 'psql'),
    ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
    { timeoutMs, server: false });
}

const ident = (name) => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return name;
};

/// Initialises and starts a private cluster. Resolves to
/// {port, dir, password, role, url(db), createDatabase(name), psql(url, sql), admin(sql), stop(),
///  start(), destroy(), log()}.
export async function startPostgres({ sharedBuffers = '16MB', maxConnections = 200 } = {}) {
  if (!fs.existsSync(path.join(PG_BIN, 'initdb'))) {
    throw new Error(`no PostgreSQL 15 in ${PG_BIN} (IB_PG_BIN): scripts/install-deps.sh --test installs it`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ib-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const password = crypto.randomBytes(18).toString('base64url');
  let owner;
  if (asRoot) {
    owner = {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString()),
    };
    fs.chownSync(dir, owner.uid, owner.gid);
  }
  let running = false;
  const pg = {
    dir,
    password,
    port: 0,
    role: PG_ROLE,
    /// The server's log so far (for a failing test's message).
    log: () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } },
    psql,
    /// SQL as the superuser over the unix socket (set-up and checks only; never the gateway's way in).
    admin: (sql, db = 'postgres') =>
      psql(`postgresql:///${db}?host=${encodeURIComponent(dir)}&port=${pg.port}&user=postgres`, sql),
    /// A libpq URL for database `db` as the ordinary role over TCP with its password.
    url: (db) => `postgresql://${PG_ROLE}:${password}@127.0.0.1:${pg.port}/${db}`,
    /// A fresh database owned by the ordinary role; resolves to its URL.
    async createDatabase(name) {
      await pg.admin(`CREATE DATABASE ${ident(name)} OWNER ${PG_ROLE}`);
      return pg.url(name);
    },
    /// Starts the server again (same port, same data); bounded by pg_ctl's own wait.
    async start() {
      await run(path.join(PG_BIN, 'pg_ctl'),
        ['-D', data, '-l', logFile, '-w', '-t', '30', 'start'], { cwd: dir, timeoutMs: 40000 });
      running = true;
    },
    /// Fast shutdown (open sessions are cut, committed data stays); bounded.
    async stop({ mode = 'fast' } = {}) {
      if (!running) return;
      await run(path.join(PG_BIN, 'pg_ctl'),
        ['-D', data, '-m', mode, '-w', '-t', '30', 'stop'], { cwd: dir, timeoutMs: 40000 });
      running = false;
    },
    /// Stops the server and removes the temp dir. The data is thrown away, so the shutdown is
    /// immediate: a fast one would first checkpoint every database the tests created.
    async destroy() {
      live.delete(pg);
      try { await pg.stop({ mode: 'immediate' }); } catch { pg.destroySync(); return; }
      fs.rmSync(dir, { recursive: true, force: true });
    },
    /// The synchronous last resort for process exit: immediate shutdown, then remove the dir.
    destroySync() {
      live.delete(pg);
      if (running) {
        const args = ['-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop'];
        const [cmd, argv] = asRoot
          ? ['runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'pg_ctl'), ...args]]
          : [path.join(PG_BIN, 'pg_ctl'), args];
        try { execFileSync(cmd, argv, { cwd: dir, timeout: 15000, stdio: 'ignore' }); } catch { /* gone */ }
        running = false;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(pg);
  try {
    await run(path.join(PG_BIN, 'initdb'), [
      '-D', data, '-U', 'postgres', '--encoding=UTF8', '--locale=C', '--no-sync',
      '--auth-local=trust', '--auth-host=scram-sha-256',
    ], { cwd: dir, timeoutMs: 60000 });
    // The port is chosen free just before the server binds it; another process may win the race,
    // so try a few ports before giving up.
    for (let attempt = 1; ; ++attempt) {
      pg.port = await freePort();
      fs.writeFileSync(path.join(data, 'postgresql.auto.conf'), [
        `listen_addresses = '127.0.0.1'`,
        `port = ${pg.port}`,
        `unix_socket_directories = '${dir}'`,
        `fsync = on`,
        `synchronous_commit = on`,
        `shared_buffers = '${sharedBuffers}'`,
        `max_connections = ${maxConnections}`,
        `password_encryption = 'scram-sha-256'`,
        `log_min_messages = warning`,
        '',
      ].join('\n'));
      if (owner) fs.chownSync(path.join(data, 'postgresql.auto.conf'), owner.uid, owner.gid);
      try {
        await pg.start();
        break;
      } catch (e) {
        if (attempt >= 3) throw new Error(`${e.message}\n${pg.log()}`);
      }
    }
    await pg.admin(`CREATE ROLE ${PG_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE `
      + `PASSWORD '${password}'`);
  } catch (e) {
    pg.destroySync();
    throw e;
  }
  return pg;
}
