// When a native addon counts as stale (shared/native-addon.ts): its stamp is native/build.mjs's
// digest of the addon's .c and every header of native/, so a build is current exactly while
// neither changed. Checked on a copy of the package's native sources and real builds: the stamps
// build.mjs wrote match the loader's digest, and editing the shared header (native/fdlibm.h,
// included by the kernel, the passes and the shuffle builds) makes those builds stale.

import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unusableReason } from '../../shared/native-addon.js';

const REPO = resolve(import.meta.dirname, '../..');
const root = mkdtempSync(join(tmpdir(), 'dpt-native-addon-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a native addon’s staleness', () => {
  it('is current as built, and stale once the shared header changes', () => {
    mkdirSync(join(root, 'native'));
    mkdirSync(join(root, 'build', 'native'), { recursive: true });
    for (const file of readdirSync(join(REPO, 'native'))) copyFileSync(join(REPO, 'native', file), join(root, 'native', file));
    for (const name of ['kernel', 'passes', 'shuffle']) {
      for (const ext of ['node', 'sha256']) copyFileSync(join(REPO, 'build', 'native', `${name}.${ext}`), join(root, 'build', 'native', `${name}.${ext}`));
    }
    for (const name of ['kernel', 'passes', 'shuffle']) expect(unusableReason(root, name), name).toBeUndefined();
    appendFileSync(join(root, 'native', 'fdlibm.h'), '\n// edited\n');
    for (const name of ['kernel', 'passes', 'shuffle']) expect(unusableReason(root, name), name).toMatch(/older than native\/\w+\.c/);
    expect(unusableReason(root, 'huge-pages')).toMatch(/was not built/);
  });
});
