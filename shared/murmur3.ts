// MurmurHash3_x86_32 (Austin Appleby, SMHasher's MurmurHash3.cpp), the hash of the feature hashing
// spec (issue #13): the same uint32 as the reference implementation and Python's mmh3.hash(…,
// signed=False) for any bytes and seed. Exports: murmur3_x86_32.
// Lean on purpose: it hashes millions of cells, so no allocation and 32-bit integer math only
// (Math.imul for the products, >>> 0 once at the end).

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * The 32-bit MurmurHash3 of bytes [0, length) of `bytes` (default: all of them) with `seed`
 * (taken mod 2^32), as an unsigned integer. Blocks are read little-endian whatever the machine.
 */
export function murmur3_x86_32(bytes: Uint8Array, seed: number, length: number = bytes.length): number {
  let h = seed | 0;
  const blocksEnd = length & ~3;
  for (let i = 0; i < blocksEnd; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  // The tail: 1 to 3 bytes, little-endian, mixed without the h rotation (the reference's switch fall-through).
  const tail = length & 3;
  if (tail !== 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocksEnd + 2]! << 16;
    if (tail >= 2) k ^= bytes[blocksEnd + 1]! << 8;
    k ^= bytes[blocksEnd]!;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  // Finalization mix (fmix32): forces every bit to avalanche.
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
