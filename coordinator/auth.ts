// Token checks shared by every door of the coordinator (workers, HTTP, monitors): compared in
// constant time through SHA-256 digests, so neither content nor length leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

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
