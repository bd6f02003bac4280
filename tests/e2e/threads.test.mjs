// The thread plans a deployment can choose (docs/life-of-a-request.md, "Scheduled actors run on
// the I/O threads"): one I/O thread running the actors too (the default on two cores: sessions
// and exchanges on the io_context's own executor, no strands), several I/O threads (a strand per
// session and exchange), and CAF's own worker threads beside one I/O thread. Each must answer
// concurrent plain and streamed requests, each answer intact, through the real binary. Then what
// the process itself does with its threads and pages: the request-log writer's priority, no
// libpq without a database, and an idle gateway that sleeps.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { sdk, startStack, userWithKeys, userMessage } from './lib/stack.mjs';
import { waitUntil } from './lib/procs.mjs';

const stacks = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

const plans = [
  { name: 'one I/O thread running the actors', server: { io_threads: 1 }, io: 1, onIo: true },
  { name: 'two I/O threads running the actors', server: { io_threads: 2 }, io: 2, onIo: true },
  { name: "CAF's worker threads beside one I/O thread", server: { io_threads: 1, scheduler: 'caf', actor_threads: 2 },
    io: 1, onIo: false },
];

/// Runs `n` tasks, `c` at a time.
async function pool(n, c, task) {
  let next = 0;
  const results = [];
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) {
      const i = next++;
      results[i] = await task(i);
    }
  }));
  return results;
}

for (const plan of plans) {
  test(`${plan.name}: concurrent requests and streams are each answered whole`, async () => {
    const stack = await startStack({ env: { IB_LOG_LEVEL: 'info' }, config: { server: plan.server } });
    stacks.push(stack);
    // The log is written by its own thread: wait for the start line (JSON, on stdout).
    const started = await waitUntil(
      () => stack.gw.stdout().split('\n').find((l) => l.includes('"inferbridge started"')),
      { what: 'the start log line' },
    );
    const fields = JSON.parse(started);
    assert.equal(fields.io_threads, plan.io);
    assert.equal(fields.actors_on_io, plan.onIo);

    const user = await userWithKeys(stack.gw, ['openai']);
    const client = sdk(stack.gw, user.api_key);
    const plain = await pool(200, 16, async (i) => {
      const r = await client.chat.completions.create({ model: 'openai/gpt-4.1-mini', messages: userMessage(`plain ${i}`) });
      return r.choices[0].message.content;
    });
    plain.forEach((text, i) => assert.equal(text, `Hello from mock openai! You said: plain ${i}`));

    const streamed = await pool(48, 8, async (i) => {
      const s = await client.chat.completions.create({
        model: 'openai/gpt-4.1-mini', messages: userMessage(`stream ${i}`), stream: true,
      });
      let text = '';
      let finish = null;
      for await (const chunk of s) {
        text += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { text, finish };
    });
    streamed.forEach((r, i) => {
      assert.equal(r.text, `Hello from mock openai! You said: stream ${i}`);
      assert.equal(r.finish, 'stop');
    });
  });
}

/// The nice value of each of `pid`'s threads (field 19 of /proc/PID/task/TID/stat, counted after
/// the parenthesised command name, which may hold spaces).
function threadNices(pid) {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('the request-log writer runs at nice 5, every other thread at 0', async () => {
  const stack = await startStack();
  stacks.push(stack);
  // The writer lowers its priority when it starts, on its own thread.
  const nices = await waitUntil(() => {
    const n = threadNices(stack.gw.proc.pid);
    return n.includes(5) && n;
  }, { what: 'a thread at nice 5' });
  assert.equal(nices.filter((n) => n === 5).length, 1, JSON.stringify(nices));
  assert.ok(nices.every((n) => n === 0 || n === 5), JSON.stringify(nices));
});

test('a gateway on LMDB never loads libpq, nor the libraries only libpq needs', async () => {
  // storage/pg.cpp loads libpq.so.5 on first use; cluster.test.mjs checks that a node on
  // PostgreSQL has it. Here after a sign-up, a key write and a chat.
  const stack = await startStack();
  stacks.push(stack);
  const user = await userWithKeys(stack.gw, ['openai']);
  const r = await sdk(stack.gw, user.api_key).chat.completions.create({
    model: 'openai/gpt-4.1-mini', messages: userMessage('no database here'),
  });
  assert.equal(r.choices[0].message.content, 'Hello from mock openai! You said: no database here');
  const maps = fs.readFileSync(`/proc/${stack.gw.proc.pid}/maps`, 'utf8');
  for (const lib of ['libpq.so', 'libgnutls.so', 'libldap', 'libkrb5.so']) {
    assert.ok(!maps.includes(lib), `${lib} is mapped`);
  }
});

/// Context switches of every thread of `pid` so far (voluntary and not, /proc/PID/task/*/status).
function contextSwitches(pid) {
  let n = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const st = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    for (const m of st.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) n += Number(m[1]);
  }
  return n;
}

test('an idle gateway sleeps: no wake-up per provider while every breaker is closed', async () => {
  // The health supervisors tick only while a cooldown runs or a breaker is not closed
  // (actors/health_supervisor.cpp, arm_tick); before, each ticked every second. What may still
  // wake an idle gateway is the memory releaser's 5 s check. The default configuration has six
  // providers; their ticks shared one timer wake-up a second.
  const stack = await startStack({ env: { IB_LOG_LEVEL: 'info' } });
  stacks.push(stack);
  const pid = stack.gw.proc.pid;
  // Started: the start line is written (by the log's thread) once everything is up.
  await waitUntil(() => stack.gw.stdout().includes('"inferbridge started"'), { what: 'the start log line' });
  const before = contextSwitches(pid);
  // A measurement window, not a wait for an event: what happens in it is what is counted.
  await new Promise((resolve) => { setTimeout(resolve, 4000); });
  const woke = contextSwitches(pid) - before;
  assert.ok(woke <= 2, `the idle gateway's threads were switched in ${woke} times in 4 s`);
});
