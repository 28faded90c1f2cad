import { describe, expect, it } from 'vitest';
import { murmur3_x86_32 } from '../../shared/murmur3.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

// Published vectors of the reference MurmurHash3_x86_32 (SMHasher), each found in more than one
// independent test suite: hlibc's test_murmurhash3_x86_32 (the raw-byte and tail vectors, from
// stackoverflow.com/questions/14747343), Boost.Hash2's murmur3_32 test, and the string vectors of
// several ports (Go, Rust, Swift, Java) that agree with each other.
describe('murmur3_x86_32', () => {
  it('matches the published vectors for the empty input and seeds', () => {
    expect(murmur3_x86_32(bytes(), 0)).toBe(0);
    expect(murmur3_x86_32(bytes(), 1)).toBe(0x514e28b7);
    expect(murmur3_x86_32(bytes(), 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3_x86_32(utf8(''), 0xdeadbeef)).toBe(0x0de5c6a9);
  });

  it('matches the published vectors for whole 4-byte blocks', () => {
    expect(murmur3_x86_32(bytes(0xff, 0xff, 0xff, 0xff), 0)).toBe(0x76293b50);
    expect(murmur3_x86_32(bytes(0x21, 0x43, 0x65, 0x87), 0)).toBe(0xf55b516b);
    expect(murmur3_x86_32(bytes(0x21, 0x43, 0x65, 0x87), 0x5082edee)).toBe(0x2362f9de);
    expect(murmur3_x86_32(bytes(0, 0, 0, 0), 0)).toBe(0x2362f9de);
    expect(murmur3_x86_32(utf8('test'), 0)).toBe(0xba6bd213);
    expect(murmur3_x86_32(utf8('test'), 0x9747b28c)).toBe(0x704b81dc);
  });

  it('matches the published vectors for tails of 1, 2 and 3 bytes', () => {
    expect(murmur3_x86_32(bytes(0x21, 0x43, 0x65), 0)).toBe(0x7e4a8634);
    expect(murmur3_x86_32(bytes(0x21, 0x43), 0)).toBe(0xa0f7b07a);
    expect(murmur3_x86_32(bytes(0x21), 0)).toBe(0x72661cf4);
    expect(murmur3_x86_32(bytes(0, 0, 0), 0)).toBe(0x85f0b427);
    expect(murmur3_x86_32(bytes(0, 0), 0)).toBe(0x30f4c306);
    expect(murmur3_x86_32(bytes(0), 0)).toBe(0x514e28b7);
    expect(murmur3_x86_32(utf8('t'), 0xdeadbeef)).toBe(0x3b15dcf8);
    expect(murmur3_x86_32(utf8('te'), 0xdeadbeef)).toBe(0xac981332);
    expect(murmur3_x86_32(utf8('tes'), 0xdeadbeef)).toBe(0xc1c78dda);
    expect(murmur3_x86_32(utf8('testy'), 0)).toBe(0x44af8342);
    expect(murmur3_x86_32(utf8('testy1'), 0)).toBe(0x8a1a243a);
    expect(murmur3_x86_32(utf8('testy12'), 0)).toBe(0x845461b9);
  });

  it('matches the published vectors for text, blocks and tail together', () => {
    expect(murmur3_x86_32(utf8('hello'), 0)).toBe(0x248bfa47);
    expect(murmur3_x86_32(utf8('Hello, world!'), 0)).toBe(0xc0363e43);
    expect(murmur3_x86_32(utf8('Hello, world!'), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3_x86_32(utf8('Hello, world!'), 4321)).toBe(0xbf505788);
    expect(murmur3_x86_32(utf8('The quick brown fox jumps over the lazy dog'), 0)).toBe(0x2e4ff723);
    expect(murmur3_x86_32(utf8('The quick brown fox jumps over the lazy dog'), 0x9747b28c)).toBe(0x2fa826cd);
  });

  it('hashes the UTF-8 bytes of non-ASCII text', () => {
    // "ç" and "↓" are 2 and 3 UTF-8 bytes: a hash of UTF-16 units would differ.
    expect(murmur3_x86_32(utf8('special characters açb↓c'), 0)).toBe(0xbe83b140);
  });

  it('hashes only the first `length` bytes when given', () => {
    const text = utf8('origin=ATL^destination=SAV and more');
    for (const length of [0, 1, 2, 3, 4, 5, 11, 30]) {
      expect(murmur3_x86_32(text, 0, length)).toBe(murmur3_x86_32(text.slice(0, length), 0));
    }
  });
});
