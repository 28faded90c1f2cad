// V8's tier-up threshold in dpt's processes (issue #15 item 1, cli/tier-up.ts): the real dpt entry
// point lowers it, so a per-message function (a few hundred bytes of bytecode, no loop, called once
// per step) gets optimized code after far fewer calls than with V8's own threshold;
// DPT_TIER_UP_BUDGET=v8 keeps V8's, and a bad value is one usage line (exit 2).
// Calls are counted, not timed: a probe preloaded into `dpt --version` calls the function at exit
// (after the CLI set the flag) until V8 reports it optimized; concurrent recompilation is off so
// the optimization happens at the call that asks for it.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, killAll, REPO, runCli, startProgram, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
const probe = join(directory.path, 'tier-up-probe.cjs');
const MAX_CALLS = 100_000;
writeFileSync(
  probe,
  `// Loaded with --require before dpt's own code; runs when dpt exits.
function step(m) {
  const a = m.a * 0.5 + m.b * 0.25 - m.c / 3;
  const b = m.d > 0 ? m.e + m.f : m.e - m.f;
  const c = (m.g | 0) + (m.h | 0) + (m.i | 0) + (m.j | 0);
  const d = Math.max(m.a, m.b, m.c) - Math.min(m.d, m.e, m.f);
  const e = m.k === 'step' ? a + b : a - b;
  const f = m.l.length + m.n.length + m.o.length;
  return a + b + c + d + e + f + (m.p ? 1 : 0) + (m.q ? 2 : 0);
}
process.on('exit', () => {
  const m = { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 'step', l: [1], n: [2, 3], o: [], p: true, q: false };
  let calls = 0;
  // Bit 64 of V8's optimization status: the function runs TurboFan code (the tier the interrupt
  // budget governs; a Maglev tier, default from Node 22, sets other bits).
  while (calls < ${MAX_CALLS} && (%GetOptimizationStatus(step) & 64) === 0) { step(m); calls++; }
  process.stderr.write('calls to TurboFan code: ' + calls + '\\n');
});
`,
);

afterAll(() => {
  killAll();
  directory.remove();
});

/** Calls the probe's function needed before V8 optimized it, in a `dpt --version` with `env`. */
async function callsToOptimize(env: Record<string, string>): Promise<number> {
  const dpt = startProgram(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', '--require', probe, CLI], ['--version'], {
    cwd: REPO,
    env: { ...process.env, ...env },
  });
  const { code } = await dpt.exited(60_000);
  expect(code, dpt.stderr()).toBe(0);
  const calls = /calls to TurboFan code: (\d+)/.exec(dpt.stderr());
  expect(calls, dpt.stderr()).not.toBeNull();
  return Number(calls![1]);
}

describe('tier-up threshold', () => {
  it("optimizes a per-step function after a fraction of the calls V8's own threshold needs", async () => {
    const dptCalls = await callsToOptimize({ DPT_TIER_UP_BUDGET: '' });
    const v8Calls = await callsToOptimize({ DPT_TIER_UP_BUDGET: 'v8' });
    expect(v8Calls).toBeLessThan(MAX_CALLS);
    // 1/8 of V8's budget (8,192 of 67,584 bytes): measured 130 calls against 986.
    expect(dptCalls * 4).toBeLessThan(v8Calls);
    const larger = await callsToOptimize({ DPT_TIER_UP_BUDGET: '32768' });
    expect(larger).toBeGreaterThan(dptCalls);
    expect(larger).toBeLessThan(v8Calls);
  }, 120_000);

  it('refuses a bad DPT_TIER_UP_BUDGET with one line and exit code 2', async () => {
    for (const value of ['12', 'fast', '8192.5', '-1']) {
      const { code, stderr } = await runCli(['--version'], { DPT_TIER_UP_BUDGET: value });
      expect(code, stderr).toBe(2);
      expect(stderr.trim().split('\n')).toEqual([
        `dpt: DPT_TIER_UP_BUDGET: expected 'v8' or an integer number of bytes in [1024, 16777216], got '${value}' (DPT_CONFIG)`,
      ]);
    }
  }, 120_000);
});
