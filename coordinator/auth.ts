// Token checks shared by every door of the coordinator (workers, HTTP, monitors): compared in
// constant time through SHA-256 digests, so neither content nor length leaks through timing.
// Also the one rule for when a token may be left out: only on a loopback address, decided from
// the address the host name resolves to and the server binds, never from how the name is spelled.

import { createHash, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { ConfigError } from '../shared/errors.js';

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (::ffff:127.x.y.z), in any spelling. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * Whether an IP address is a loopback address. A host name is not an address and gets false:
 * `127.lan` may resolve anywhere (issue 10, item 5), so resolve it first (resolveListenAddress).
 */
export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return LOOPBACK.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The IP address `host` resolves to: the first answer of the system resolver (as
 * net.Server.listen would pick it). The server binds this address, so the loopback decision
 * and the bind see the same address even if the name's records change. Throws ConfigError
 * naming --host when the name does not resolve.
 */
export async function resolveListenAddress(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  try {
    return (await lookup(host)).address;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`--host ${host} does not resolve to an address (${code})`);
  }
}

/** Returns a check of a candidate token; with no token configured every candidate passes. */
export function createTokenCheck(token: string | null): (candidate: string) => boolean {
  if (token === null) return () => true;
  const expected = digest(token);
  return (candidate) => timingSafeEqual(digest(candidate), expected);
}

/** The token an HTTP request presents: `Authorization: Bearer T`, else `?token=T`, else ''. */
export function requestToken(request: IncomingMessage, url: URL): string {
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  return bearer ?? url.searchParams.get('token') ?? '';
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
