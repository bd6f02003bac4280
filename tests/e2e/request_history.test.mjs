// Request history on the single-node store (LMDB): the scenarios of lib/history_cases.mjs.
// cluster.test.mjs runs the same scenarios on PostgreSQL.
import { after, before, test } from 'node:test';

import { historyCases } from './lib/history_cases.mjs';
import { startStack } from './lib/stack.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });

historyCases(test, () => stack, (config) => startStack({ config }));
