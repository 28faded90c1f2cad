import { describe, expect, it } from 'vitest';
import { parseRange } from '../../coordinator/data-route.js';

describe('parseRange (GET /data)', () => {
  const SIZE = 1000;

  it('reads one closed range, inclusive at both ends as HTTP writes it', () => {
    expect(parseRange('bytes=0-63', SIZE)).toEqual({ kind: 'range', start: 0, end: 63 });
    expect(parseRange('bytes=999-999', SIZE)).toEqual({ kind: 'range', start: 999, end: 999 });
  });

  it('clips a range that runs past the end to the last byte', () => {
    expect(parseRange('bytes=900-5000', SIZE)).toEqual({ kind: 'range', start: 900, end: 999 });
    expect(parseRange('bytes=900-', SIZE)).toEqual({ kind: 'range', start: 900, end: 999 });
  });

  it('reads a suffix range as the last N bytes (the whole file when N exceeds it)', () => {
    expect(parseRange('bytes=-64', SIZE)).toEqual({ kind: 'range', start: 936, end: 999 });
    expect(parseRange('bytes=-5000', SIZE)).toEqual({ kind: 'range', start: 0, end: 999 });
  });

  it('finds a range that starts at or past the end unsatisfiable (416), and an empty suffix too', () => {
    expect(parseRange('bytes=1000-', SIZE)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=4000-5000', SIZE)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', SIZE)).toEqual({ kind: 'unsatisfiable' });
  });

  it('serves the whole file for no header, several ranges, another unit or a malformed header (RFC 9110 lets a server ignore Range)', () => {
    for (const header of [undefined, 'bytes=0-1,5-9', 'items=0-5', 'bytes=abc', 'bytes=-', 'bytes=9-3']) {
      expect(parseRange(header, SIZE), String(header)).toEqual({ kind: 'whole' });
    }
  });
});
