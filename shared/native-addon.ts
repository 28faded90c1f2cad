// Loads one of dpt's optional native addons (issue #15) from build/native/<name>.node, built at
// install by native/build.mjs where a C compiler exists. Absent, stale (its source changed since
// the build) or failing to load, an addon is simply not there and callers use their WebAssembly
// path: a native addon is never required and never changes a result's bits, only its speed.
//
// DPT_NATIVE=off never loads one (to measure or test the WebAssembly path); DPT_NATIVE=require
// makes a missing or stale addon an error that says why (tests that must exercise native code).

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.js';

const requireAddon = createRequire(import.meta.url);
const loaded = new Map<string, unknown>();

/** The package root: the nearest directory above this module that holds package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6 && !existsSync(join(dir, 'package.json')); depth++) dir = dirname(dir);
  return dir;
}

export type NativeMode = 'auto' | 'off' | 'require';

export function nativeMode(env: NodeJS.ProcessEnv = process.env): NativeMode {
  const value = env.DPT_NATIVE;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'off' || value === '0') return 'off';
  if (value === 'require' || value === '1') return 'require';
  throw new ConfigError(`DPT_NATIVE must be auto, off or require (got ${JSON.stringify(value)})`);
}

/** Why addon `name` under package root `root` cannot be used, or undefined when build/native/<name>.node is current (exported for tests). */
export function unusableReason(root: string, name: string): string | undefined {
  const binary = join(root, 'build', 'native', `${name}.node`);
  if (!existsSync(binary)) return `${binary} was not built (no C compiler or N-API headers at install; run node native/build.mjs)`;
  const source = join(root, 'native', `${name}.c`);
  const stamp = join(root, 'build', 'native', `${name}.sha256`);
  if (existsSync(source)) {
    // native/build.mjs's stamp: the .c, then every header of native/ in name order (any addon may include one).
    const hash = createHash('sha256').update(readFileSync(source));
    for (const header of readdirSync(dirname(source))
      .filter((file) => file.endsWith('.h'))
      .sort())
      hash.update(readFileSync(join(dirname(source), header)));
    const digest = hash.digest('hex');
    if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== digest) return `${binary} is older than native/${name}.c (run node native/build.mjs)`;
  }
  return undefined;
}

/**
 * The native addon `name`'s exports, or undefined when it is off, absent, stale or fails to load
 * (mode auto). Loaded once per process.
 */
export function loadNativeAddon<T>(name: string, mode: NativeMode = nativeMode()): T | undefined {
  if (mode === 'off') return undefined;
  if (loaded.has(name)) return loaded.get(name) as T | undefined;
  const root = packageRoot();
  let addon: T | undefined;
  let reason = unusableReason(root, name);
  if (reason === undefined) {
    try {
      addon = requireAddon(join(root, 'build', 'native', `${name}.node`)) as T;
    } catch (error) {
      reason = `build/native/${name}.node failed to load: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  if (addon === undefined && mode === 'require') throw new ConfigError(`DPT_NATIVE=require: native addon ${name}: ${reason}`);
  loaded.set(name, addon);
  return addon;
}
