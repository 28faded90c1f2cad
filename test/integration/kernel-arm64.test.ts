// The native kernel's bits on arm64 (issue #15: "the same bits on any cluster" across
// architectures). native/kernel.c is compiled with native/build.mjs's own floating-point flags
// into a plain program (test/native/cross-check.c, against a stand-in node_api.h) twice: for this
// x86-64 machine, where it runs its AVX-512, AVX2 and baseline builds, and for arm64 (Debian's
// cross compiler), run under qemu-user, where the baseline build is NEON's 2 lanes. Each prints one
// hash of every output bit of the same seeded inputs (extreme magnitudes, subnormals, ±0, row
// orders, class weights) and one of exp/log1p over every binade: they must be equal. A build
// with FMA contraction (what -ffp-contract=off forbids) must differ, so the hash can see a change.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, temporaryDirectory } from '../helpers/cli.js';

const CROSS_CC = 'aarch64-linux-gnu-gcc';
const QEMU = 'qemu-aarch64';
const isX86 = process.arch === 'x64';
const has = (command: string): boolean => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
/** CI installs the cross compiler and qemu-user (.ci/run): there a missing one fails the test instead of skipping it. On an arm64 host the check has no x86-64 builds to compare with. */
const canCross = has(CROSS_CC) && has(QEMU) && has('cc');

const directory = temporaryDirectory();
afterAll(() => directory.remove());

/** native/build.mjs's flags, minus those that make a shared object, plus kernel.c's own `dpt-cflags`. */
function kernelFlags(): string[] {
  const build = readFileSync(join(REPO, 'native', 'build.mjs'), 'utf8');
  const common = /const COMMON_FLAGS = (\[[^\]]*\]);/.exec(build);
  if (common === null) throw new Error('native/build.mjs: no COMMON_FLAGS array');
  const flags = (JSON.parse(common[1]!.replaceAll("'", '"')) as string[]).filter((flag) => !['-fPIC', '-shared', '-fvisibility=hidden'].includes(flag));
  const extra = /^\/\/ dpt-cflags:(.*)$/m.exec(readFileSync(join(REPO, 'native', 'kernel.c'), 'utf8'));
  return [...flags, ...(extra === null ? [] : extra[1]!.trim().split(/\s+/)), '-Wno-unused-function'];
}

/** Compiles the check with `cc` and `flags`, runs it (through `runner` when given), returns its output lines. */
function crossCheck(cc: string, flags: readonly string[], name: string, runner: string[] = []): string[] {
  const binary = join(directory.path, name);
  const native = join(REPO, 'test', 'native');
  execFileSync(cc, [...flags, `-I${native}`, join(native, 'cross-check.c'), '-o', binary, '-lm'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  const [command, ...prefix] = [...runner, binary];
  const result = spawnSync(command!, [...prefix, '4000', '300000'], { encoding: 'utf8', timeout: 120_000 });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim().split('\n');
}

const hashOf = (lines: readonly string[], build: string): string | undefined => lines.find((line) => line.startsWith(`${build} `))?.split(/\s+/)[2];

describe.skipIf(!isX86 || (!canCross && process.env.CI !== 'true'))('the native kernel on arm64 (qemu-user)', () => {
  it('gives the bits of the x86-64 builds, and a build with FMA contraction does not', () => {
    const flags = kernelFlags();
    expect(flags).toContain('-ffp-contract=off');
    const x86 = crossCheck('cc', flags, 'cross-check-x86');
    const arm64 = crossCheck(CROSS_CC, [...flags, '-static'], 'cross-check-arm64', [QEMU]);
    const baseline = hashOf(x86, 'kernel baseline');
    expect(baseline).toMatch(/^[0-9a-f]{16}$/);
    // Every x86 build this CPU runs (at least AVX2 and the baseline on any x86-64 CI machine) agrees.
    const x86Kernels = x86.filter((line) => line.startsWith('kernel '));
    expect(x86Kernels.length).toBeGreaterThanOrEqual(2);
    for (const line of x86Kernels) expect(line.split(/\s+/)[2], line).toBe(baseline);
    // arm64 has only its baseline build (NEON, 2 × float64 lanes): the same bits, kernel and exp/log1p.
    expect(arm64.filter((line) => line.startsWith('kernel '))).toHaveLength(1);
    expect(hashOf(arm64, 'kernel baseline')).toBe(baseline);
    expect(hashOf(arm64, 'exp/log1p')).toBe(hashOf(x86, 'exp/log1p'));
    // The hash sees one change of rounding: contraction into FMA changes it on arm64.
    const contracted = crossCheck(CROSS_CC, [...flags.filter((flag) => flag !== '-ffp-contract=off'), '-ffp-contract=fast', '-static'], 'cross-check-fma', [
      QEMU,
    ]);
    expect(hashOf(contracted, 'kernel baseline')).not.toBe(baseline);
  }, 300_000);
});
