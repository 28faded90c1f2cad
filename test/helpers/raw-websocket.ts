// A WebSocket client at the byte level, for hostile-peer tests: does the HTTP upgrade by hand,
// then writes any frame at all (invalid opcodes, reserved bits, lengths beyond every limit,
// unmasked frames, garbage) and parses what the server sends back. Every wait has a deadline.

import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawPeer {
  readonly socket: Socket;
  /** HTTP status line of the answer to the upgrade (e.g. 101, 401, 503). */
  readonly status: number;
  /** Resolves with the close code of the first close frame the server sends (or rejects at the deadline). */
  closeFrame(timeoutMs?: number): Promise<number>;
  /** Resolves once the server has ended or reset the TCP connection. */
  ended(timeoutMs?: number): Promise<void>;
  write(bytes: Uint8Array): void;
}

/** Connects to 127.0.0.1:port and asks to upgrade `path`; resolves once the answer's head arrived. */
export function rawUpgrade(port: number, path = '/', headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let status = 0;
    let closeCode: number | null = null;
    let isEnded = false;
    const closeWaiters: ((code: number) => void)[] = [];
    const endWaiters: (() => void)[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade of ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    const markEnded = (): void => {
      isEnded = true;
      for (const waiter of endWaiters.splice(0)) waiter();
    };
    socket.on('error', () => undefined); // a reset is an outcome the tests observe through ended()
    socket.on('close', () => {
      markEnded();
      if (status === 0) {
        clearTimeout(timer);
        reject(new Error(`the connection for ${path} closed before any answer to the upgrade`));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (status === 0) {
        const headEnd = received.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received.subarray(0, headEnd).toString('latin1'))?.[1] ?? -1);
        received = received.subarray(headEnd + 4);
        clearTimeout(timer);
        resolve(peer);
      }
      // Server frames are unmasked; only a close frame (opcode 8) is looked for.
      while (closeCode === null && received.length >= 2) {
        const opcode = received[0]! & 0x0f; // length >= 2
        let length = received[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (received.length < 4) return;
          length = received.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (received.length < 10) return;
          length = Number(received.readBigUInt64BE(2));
          offset = 10;
        }
        if (received.length < offset + length) return;
        if (opcode === 8) {
          closeCode = length >= 2 ? received.readUInt16BE(offset) : 1005;
          for (const waiter of closeWaiters.splice(0)) waiter(closeCode);
        }
        received = received.subarray(offset + length);
      }
    });
    const peer: RawPeer = {
      socket,
      get status() {
        return status;
      },
      closeFrame: (waitMs = 15_000) =>
        new Promise((resolveClose, rejectClose) => {
          if (closeCode !== null) return resolveClose(closeCode);
          const closeTimer = setTimeout(() => rejectClose(new Error(`no close frame on ${path} within ${waitMs} ms`)), waitMs);
          closeWaiters.push((code) => {
            clearTimeout(closeTimer);
            resolveClose(code);
          });
        }),
      ended: (waitMs = 15_000) =>
        new Promise((resolveEnd, rejectEnd) => {
          if (isEnded) return resolveEnd();
          const endTimer = setTimeout(() => rejectEnd(new Error(`the server kept ${path} open for ${waitMs} ms`)), waitMs);
          endWaiters.push(() => {
            clearTimeout(endTimer);
            resolveEnd();
          });
        }),
      write: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
    };
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
  });
}

/**
 * One client frame: `opcode` (any 4-bit value, valid or not), masked unless `isMasked` is false,
 * with `declaredLength` in the header (default: the payload's; larger values announce bytes
 * that never come, e.g. a frame beyond every size limit) and `rsv` bits (0-7).
 */
export function frame(opcode: number, payload: Uint8Array, options: { isMasked?: boolean; declaredLength?: bigint; rsv?: number } = {}): Buffer {
  const isMasked = options.isMasked ?? true;
  const length = options.declaredLength ?? BigInt(payload.length);
  const head: number[] = [0x80 | ((options.rsv ?? 0) << 4) | (opcode & 0x0f)];
  const maskBit = isMasked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 65_536n) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(Number(length));
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(length);
  }
  const mask = isMasked ? randomBytes(4) : Buffer.alloc(0);
  const body = Buffer.from(payload);
  if (isMasked) for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!; // i < length; mask has 4 bytes
  return Buffer.concat([Buffer.from(head), extended, mask, body]);
}

/** The hostile frames each state of a connection is fuzzed with. */
export function hostileFrames(seed: number): Buffer[] {
  let random = seed >>> 0;
  const next = (n: number): number => {
    random = (Math.imul(random, 1_103_515_245) + 12_345) >>> 0;
    return random % n;
  };
  return [
    frame(0x3, Buffer.from('reserved opcode')), // invalid opcode
    frame(0xb, Buffer.alloc(4)), // reserved control opcode
    frame(0x2, Buffer.alloc(8), { rsv: 4 }), // RSV1 without an extension
    frame(0x2, Buffer.alloc(8), { isMasked: false }), // a client frame must be masked
    frame(0x2, Buffer.alloc(16), { declaredLength: 1n << 40n }), // far beyond maxPayload
    frame(0x2, Buffer.alloc(16), { declaredLength: 1n << 63n }), // beyond 2^53 - 1
    frame(0x9, Buffer.alloc(200)), // a control frame longer than 125 bytes
    // Garbage: random bytes behind a first byte with RSV2/RSV3 set, so the first frame is surely invalid.
    Buffer.from([0xf0 | next(16), ...Array.from({ length: 64 + next(512) }, () => next(256))]),
  ];
}
