// Edits the bytes of a .dpt file as an attacker or a bad disk would, for tests: a flipped bit, or a
// value changed with its block's CRC-32 recomputed so the file stays "valid" by checksum. The CRC is
// computed here independently (the table-driven reflected CRC-32 of IEEE 802.3, polynomial
// 0xEDB88320), not with the code under test.

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (IEEE) of `bytes`. */
export function crc32Reference(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Where things are in a .dpt file, read from its header (layout in shared/binary-dataset.ts). */
export interface DptLayout {
  readonly rows: number;
  readonly features: number;
  readonly dataOffset: number;
  readonly labelsOffset: number;
  readonly tableOffset: number;
  readonly blockBytes: number;
}

export function dptLayout(bytes: Buffer): DptLayout {
  return {
    rows: Number(bytes.readBigUInt64LE(16)),
    features: bytes.readUInt32LE(24),
    dataOffset: Number(bytes.readBigUInt64LE(32)),
    labelsOffset: Number(bytes.readBigUInt64LE(40)),
    tableOffset: Number(bytes.readBigUInt64LE(48)),
    blockBytes: bytes.readUInt32LE(56),
  };
}

/** The content block file offset `at` lies in. */
export function blockOf(layout: DptLayout, at: number): number {
  return Math.floor((at - layout.dataOffset) / layout.blockBytes);
}

/** File offset of feature j of row `row`. */
export function featureOffset(layout: DptLayout, row: number, j: number): number {
  return layout.dataOffset + 4 * (row * layout.features + j);
}

/** Whether block `block`'s stored CRC-32 matches its bytes (by the reference CRC). */
export function blockCrcMatches(bytes: Buffer, block: number): boolean {
  const layout = dptLayout(bytes);
  const start = layout.dataOffset + block * layout.blockBytes;
  const end = Math.min(start + layout.blockBytes, layout.tableOffset);
  return crc32Reference(bytes.subarray(start, end)) === bytes.readUInt32LE(layout.tableOffset + 4 * block);
}

/** Rewrites the stored CRC-32 of the block holding offset `at`, so the edit there passes the CRC check. */
export function resealBlockOf(bytes: Buffer, at: number): void {
  const layout = dptLayout(bytes);
  const block = blockOf(layout, at);
  const start = layout.dataOffset + block * layout.blockBytes;
  const end = Math.min(start + layout.blockBytes, layout.tableOffset);
  bytes.writeUInt32LE(crc32Reference(bytes.subarray(start, end)), layout.tableOffset + 4 * block);
}

/** Sets feature j of row `row` to `value` (float32) and reseals its block: a crafted, checksum-valid file. */
export function craftFeature(bytes: Buffer, row: number, j: number, value: number): void {
  const at = featureOffset(dptLayout(bytes), row, j);
  bytes.writeFloatLE(value, at);
  resealBlockOf(bytes, at);
}

/** Sets the label of row `row` to `value` and reseals its block. */
export function craftLabel(bytes: Buffer, row: number, value: number): void {
  const at = dptLayout(bytes).labelsOffset + row;
  bytes.writeUInt8(value, at);
  resealBlockOf(bytes, at);
}

/** Sets the uint16 class index of row `row` in a version-2 file to `value` and reseals its block. */
export function craftLabelIndex(bytes: Buffer, row: number, value: number): void {
  const at = dptLayout(bytes).labelsOffset + 2 * row;
  bytes.writeUInt16LE(value, at);
  resealBlockOf(bytes, at);
}
