// V8's tier-up threshold for dpt's processes (issue #15 item 1). V8 compiles a function with its
// optimizing compiler (TurboFan) once the function has run about ticks × interrupt budget
// (3 × 66 KB by default) of bytecode. dpt's per-step code (the ws receiver and sender, the
// stream machinery, msgpackr, the protocol checks, the scatter and reduce bookkeeping) runs a few
// hundred bytes of bytecode per call and is called once or twice per step, so with V8's default
// each of those functions waited 700 to 3,900 steps for optimized code (measured from V8's log,
// docs/performance.md), and a short run spent its first thousands of steps interpreted. A budget
// of TIER_UP_BUDGET_BYTES brings them to optimized code within the first 100–400 steps.
// The threshold changes when code is compiled, never what it computes (JavaScript's float64
// arithmetic is the same in every tier), so the same-bits guarantee is untouched.
//
// DPT_TIER_UP_BUDGET=<bytes> sets another budget, DPT_TIER_UP_BUDGET=v8 keeps V8's own. Only the
// CLI sets it: a program using the library keeps its own process's flags (the local workers it
// starts are dpt processes and tier up sooner).

import { setFlagsFromString } from 'node:v8';
import { ConfigError } from '../shared/errors.js';

/** dpt's interrupt budget, in bytes of bytecode: 1/8 of V8's default (67,584 in Node 20). */
export const TIER_UP_BUDGET_BYTES = 8192;
/** Below this V8 would optimize on too little type feedback and deoptimize again. */
const MIN_BUDGET_BYTES = 1024;
const MAX_BUDGET_BYTES = 1 << 24;
export const TIER_UP_ENV = 'DPT_TIER_UP_BUDGET';

/** The budget DPT_TIER_UP_BUDGET asks for: bytes, or null for V8's own threshold. */
export function tierUpBudget(env: NodeJS.ProcessEnv): number | null {
  const text = env[TIER_UP_ENV];
  if (text === undefined || text === '') return TIER_UP_BUDGET_BYTES;
  if (text === 'v8') return null;
  const bytes = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < MIN_BUDGET_BYTES || bytes > MAX_BUDGET_BYTES) {
    throw new ConfigError(`${TIER_UP_ENV}: expected 'v8' or an integer number of bytes in [${MIN_BUDGET_BYTES}, ${MAX_BUDGET_BYTES}], got '${text}'`);
  }
  return bytes;
}

/**
 * Sets this process's interrupt budget from `env` (before the first command runs; local workers
 * are dpt processes too and set their own). V8 reads the flag each time it resets a function's
 * budget, so functions compiled before the call follow it from their next tick on.
 */
export function applyTierUpBudget(env: NodeJS.ProcessEnv): void {
  const bytes = tierUpBudget(env);
  if (bytes !== null) setFlagsFromString(`--interrupt-budget=${bytes}`);
}
