// A part that names one of its chunks twice (issue #10, item 2; since issue #11 a subtree listed
// twice, which the protocol refuses as an overlap; --no-reproducible is now the same tree): the peer is
// closed with the policy code (1008), its chunks are recomputed elsewhere, and the model is the
// fault-free one. Before the fix a merged part counted the repeated chunk's rows twice and the
// run died ("accounted 72 rows of 64"); a per-chunk part was half accepted.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../shared/protocol.js';
import { killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { assignedChunks, leafSubtrees, startFakeWorker } from '../helpers/fake-worker.js';
import { generateData, maxAbsDifference, referenceTrain } from '../helpers/reference.js';

const directory = temporaryDirectory();
const data = generateData(160, 4, 11);
const dataPath = join(directory.path, 'data.csv');
writeFileSync(dataPath, data.csv);
const TOKEN = 'duplicate-token';
const EPOCHS = 20;
const BATCH = 16;

afterAll(() => {
  killAll();
  directory.remove();
});

describe('a part that lists a chunk twice', () => {
  for (const reproducible of [true, false]) {
    it(`closes the peer (1008) and recomputes its chunks (${reproducible ? 'reproducible' : '--no-reproducible'})`, async () => {
      const out = join(directory.path, `model-${reproducible}.json`);
      const coordinator = startCli([
        'coordinator',
        '--data',
        dataPath,
        '--no-shuffle',
        '--no-standardize',
        '--epochs',
        String(EPOCHS),
        '--batch-size',
        String(BATCH),
        // 8 chunks so both workers get some (the default for B = 16 is one chunk).
        '--chunks',
        '8',
        '--lr',
        '0.3',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '2',
        '--token',
        TOKEN,
        '--out',
        out,
        ...(reproducible ? [] : ['--no-reproducible']),
      ]);
      const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      const url = `ws://127.0.0.1:${port}`;
      const worker = startCli(['worker', '--connect', url, '--token', TOKEN]);
      let forged = 0;
      const fake = startFakeWorker(url, TOKEN, (step, welcome) => {
        // Every step it is given: the first chunk twice (as a level-0 subtree), finite sums, the right row counts.
        forged++;
        const mine = assignedChunks(step, welcome.workerId);
        const chunks = [mine[0]!, ...mine];
        const rows = Uint32Array.from(chunks, () => BATCH / welcome.schedule.chunksPerBatch); // full batches
        const width = welcome.features + 2;
        const sums = new Float64Array(chunks.length * width);
        return encodeMessage({ kind: 'part', step: step.step, subtrees: leafSubtrees(chunks), sums, rows });
      });
      const closed = await fake.closed;
      expect(forged).toBeGreaterThanOrEqual(1);
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/overlaps or precedes/);
      const { code } = await coordinator.exited(120_000);
      expect(code, coordinator.stderr()).toBe(0);
      expect((await worker.exited()).code).toBe(0);
      expect(coordinator.stderr()).toMatch(/recomputing \d+ chunk\(s\) of step \d+ that worker \d+ owed/);
      const reference = referenceTrain(data.X, data.Y, { epochs: EPOCHS, batchSize: BATCH, lr: 0.3, l2: 0 });
      const model = JSON.parse(readFileSync(out, 'utf8')) as { weights: number[]; bias: number };
      expect(maxAbsDifference(model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
    });
  }
});
