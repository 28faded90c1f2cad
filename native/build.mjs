#!/usr/bin/env node
// Builds dpt's optional native addons (issue #15): every native/<name>.c becomes
// build/native/<name>.node, compiled by the system's C compiler against the N-API headers that
// ship with Node itself. Optional by design: no compiler, no headers, or a failed compile prints
// one line and exits 0, and dpt runs its WebAssembly paths instead (shared/native-addon.ts).
// Nothing is downloaded. Each build writes <name>.sha256 (the SHA-256 of the source it was built
// from) so that a stale addon is never loaded after its source changed.
//
// A source may ask for extra flags on a line of its own: `// dpt-cflags: -mavx2 ...`.
// Environment: CC (compiler, default cc), DPT_NODE_HEADERS (directory holding node_api.h),
// DPT_NATIVE=off (build nothing).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const sourceDir = dirname(fileURLToPath(import.meta.url));
const outDir = join(resolve(sourceDir, '..'), 'build', 'native');
// Plain IEEE-754: no contraction into FMA, no fast-math reassociation (the kernels promise bits).
const COMMON_FLAGS = ['-std=c11', '-O3', '-fPIC', '-shared', '-ffp-contract=off', '-fno-fast-math', '-fvisibility=hidden', '-Wall'];

function say(line) {
  process.stdout.write(`dpt native: ${line}\n`);
}

function headersDir() {
  const candidates = [process.env.DPT_NODE_HEADERS, join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return candidates.find((dir) => dir && existsSync(join(dir, 'node_api.h')));
}

function compilerWorks(cc) {
  try {
    execFileSync(cc, ['--version'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * The digest a build is stamped with: the addon's .c and every header of native/ (in name order),
 * which any addon may include. shared/native-addon.ts computes the same to tell a stale build.
 */
function sourceDigest(source) {
  const hash = createHash('sha256').update(source);
  for (const header of readdirSync(sourceDir)
    .filter((file) => file.endsWith('.h'))
    .sort())
    hash.update(readFileSync(join(sourceDir, header)));
  return hash.digest('hex');
}

function extraFlags(source) {
  const match = /^\/\/ dpt-cflags:(.*)$/m.exec(source);
  return match ? match[1].trim().split(/\s+/).filter(Boolean) : [];
}

function main() {
  const sources = readdirSync(sourceDir)
    .filter((file) => file.endsWith('.c'))
    .sort();
  if (sources.length === 0) return;
  if (process.env.DPT_NATIVE === 'off') return say('DPT_NATIVE=off: not built; dpt uses WebAssembly');
  const cc = process.env.CC || 'cc';
  if (!compilerWorks(cc)) return say(`no C compiler (${cc}): not built; dpt uses WebAssembly`);
  const include = headersDir();
  if (!include) return say("Node's N-API headers (node_api.h) not found: not built; dpt uses WebAssembly");
  mkdirSync(outDir, { recursive: true });
  const built = [];
  for (const file of sources) {
    const name = file.slice(0, -2);
    const sourcePath = join(sourceDir, file);
    const source = readFileSync(sourcePath);
    const target = join(outDir, `${name}.node`);
    const stamp = join(outDir, `${name}.sha256`);
    const digest = sourceDigest(source);
    if (existsSync(target) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) {
      built.push(name);
      continue;
    }
    const partial = `${target}.${process.pid}.tmp`;
    try {
      execFileSync(cc, [...COMMON_FLAGS, ...extraFlags(source.toString('utf8')), `-I${include}`, sourcePath, '-o', partial, '-lm'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 120_000,
      });
      renameSync(partial, target);
      writeFileSync(stamp, `${digest}\n`);
      built.push(name);
    } catch (error) {
      rmSync(partial, { force: true });
      rmSync(stamp, { force: true });
      const detail = String(error.stderr ?? error.message)
        .trim()
        .split('\n')[0];
      say(`${file} did not compile (${detail}); dpt uses WebAssembly for it`);
    }
  }
  if (built.length > 0) say(`built ${built.join(', ')} in build/native/`);
}

try {
  main();
} catch (error) {
  say(`skipped (${error.message}); dpt uses WebAssembly`);
}
