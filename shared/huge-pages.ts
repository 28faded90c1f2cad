// Transparent huge pages for rows held in memory (issue #15), through the optional native addon
// native/huge-pages.c. Where Linux's THP is in "madvise" mode (Debian's default) V8 never asks for
// them, and loading a file's rows into fresh WebAssembly memory paid a page fault per 4 KiB
// (0.43 s of a 0.44 s load of 146 MB here); advised, the same load took 17 ms. A hint only: the
// contents, and so every bit computed, are the same with or without it.

import { loadNativeAddon } from './native-addon.js';

interface HugePagesAddon {
  /** madvise(MADV_HUGEPAGE) on the whole 2 MiB pages inside `view`; returns the bytes advised. */
  advise(view: ArrayBufferView): number;
}

/** Advises huge pages for `view`'s memory before it is first written; returns the bytes advised (0 without the addon). */
export function adviseHugePages(view: ArrayBufferView): number {
  return loadNativeAddon<HugePagesAddon>('huge-pages')?.advise(view) ?? 0;
}
