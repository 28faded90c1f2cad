// Huge pages for rows held in memory (shared/huge-pages.ts, native/huge-pages.c): the advice
// covers exactly the whole 2 MiB pages inside a view, Linux records it on that memory (VmFlags
// "hg" in /proc/self/smaps), and the contents are untouched.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { wasm } from '../../shared/kernel-wasm.js';
import { loadNativeAddon } from '../../shared/native-addon.js';

interface HugePagesAddon {
  advise(view: ArrayBufferView): number;
}

const TWO_MIB = 2 << 20;
// CI installs a compiler: the addon must be there (DPT_NATIVE=require semantics).
const addon = loadNativeAddon<HugePagesAddon>('huge-pages', 'require')!;

/** Bytes of this process's mappings that carry VmFlags "hg" (MADV_HUGEPAGE), from /proc/self/smaps. */
function hugePageAdvisedBytes(): number {
  let total = 0;
  let size = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const sizeField = /^Size:\s+(\d+) kB/.exec(line);
    if (sizeField) size = Number(sizeField[1]) * 1024;
    else if (line.startsWith('VmFlags:') && line.slice(8).trim().split(/\s+/).includes('hg')) total += size;
  }
  return total;
}

describe('adviseHugePages', () => {
  it('advises the whole 2 MiB pages inside a WebAssembly memory view, which Linux records, and changes no byte', () => {
    // Shared, as the kernels' memory is (rows live there).
    const memory = new wasm!.Memory({ initial: 1, maximum: 400, shared: true });
    memory.grow(300); // ~19 MiB
    const view = new Uint8Array(memory.buffer, 12_345, 16 << 20);
    for (let i = 0; i < view.length; i += 4096) view[i] = (i / 4096) & 0xff;
    const advisedBefore = process.platform === 'linux' ? hugePageAdvisedBytes() : 0;
    const advised = addon.advise(view);
    // V8 places wasm memory at a page-aligned address: the advice is the view less its partial ends.
    expect(advised % TWO_MIB).toBe(0);
    expect(advised).toBeGreaterThanOrEqual(view.length - 2 * TWO_MIB);
    expect(advised).toBeLessThanOrEqual(view.length);
    for (let i = 0; i < view.length; i += 4096) expect(view[i]).toBe((i / 4096) & 0xff);
    // Linux records the advice on the mappings (VmFlags "hg"): at least the advised bytes more of them.
    if (process.platform === 'linux') expect(hugePageAdvisedBytes() - advisedBefore).toBeGreaterThanOrEqual(advised);
  });

  it('advises nothing inside a view smaller than one huge page, and refuses what is not a typed array', () => {
    expect(addon.advise(new Float32Array(1000))).toBe(0);
    expect(() => addon.advise({} as ArrayBufferView)).toThrow(TypeError);
  });
});
