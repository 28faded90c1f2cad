// Where a worker's rows come from (issue #11 item 4): --data as a local path or an http(s) URL;
// else the path the coordinator announces, when this host has it; else the coordinator's
// GET /data, over the same host, port, TLS and CA as the worker's connection, with its token.
// A worker that can do none of these fails at once with a line that says what to do.

import { isAbsolute } from 'node:path';
import { cacheDirectory } from '../shared/data-file.js';
import { DatasetError, DptError, WriteError } from '../shared/errors.js';
import type { WelcomeMessage } from '../shared/protocol.js';
import { requireRegularFile } from '../shared/regular-file.js';
import type { HttpSource } from './http-range.js';
import { RemoteDataFile } from './remote-data.js';

export type DataSource =
  | { readonly kind: 'local'; readonly path: string }
  /** `reason`: why the rows come over HTTP, for the worker's log. */
  | { readonly kind: 'remote'; readonly source: HttpSource; readonly reason: string };

/** Whether a --data value names an http(s) URL rather than a local path. */
export function isDataUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/**
 * Decides where the rows come from. `options.url` is the coordinator URL the worker connected to,
 * `token` and `ca` those of that connection. Throws a DatasetError when the announced path does
 * not open here and the coordinator does not serve its data.
 */
export function resolveDataSource(
  welcome: WelcomeMessage,
  options: { readonly url: string; readonly token: string | null; readonly ca: Buffer | null; readonly dataPath: string | null },
): DataSource {
  if (options.dataPath !== null) {
    if (!isDataUrl(options.dataPath)) return { kind: 'local', path: options.dataPath };
    // Any server: no credentials go with the request (the worker's token is the coordinator's secret).
    return { kind: 'remote', source: { url: new URL(options.dataPath), token: null, ca: options.ca, socketPath: null }, reason: '--data names a URL' };
  }
  try {
    requireRegularFile(welcome.dataPath, "the coordinator's --data");
    return { kind: 'local', path: welcome.dataPath };
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    const absolute = isAbsolute(welcome.dataPath) ? '' : ' (the coordinator announced a relative path: it is from an older dpt)';
    if (welcome.dataUrl === null) {
      throw new DatasetError(
        welcome.dataPath,
        undefined,
        undefined,
        `not found on this host${absolute} (${error.message.replace(`${welcome.dataPath}: `, '')}): give --data with a local copy, or let the worker read from the coordinator (it does when the coordinator serves /data; this one does not)`,
      );
    }
    return { kind: 'remote', source: coordinatorSource(welcome.dataUrl, options), reason: `${welcome.dataPath} is not on this host${absolute}` };
  }
}

/** The coordinator's data URL as the worker reaches it: its scheme mapped to http(s), its token only to its own origin. */
function coordinatorSource(dataUrl: string, options: { readonly url: string; readonly token: string | null; readonly ca: Buffer | null }): HttpSource {
  const connected = new URL(options.url);
  if (connected.protocol === 'ws+unix:') {
    // ws+unix:/path/to/socket:/ — the socket path ends at the first colon.
    const socketPath = connected.pathname.split(':')[0] ?? connected.pathname;
    return { url: new URL(dataUrl, 'http://localhost'), token: options.token, ca: null, socketPath };
  }
  const base = new URL(connected.href);
  base.protocol = connected.protocol === 'wss:' || connected.protocol === 'https:' ? 'https:' : 'http:';
  const url = new URL(dataUrl, base);
  return { url, token: url.origin === base.origin ? options.token : null, ca: options.ca, socketPath: null };
}

/**
 * Opens the remote file's cache entry for the run's data (welcome.sha256); errors of the cache
 * folder become a WriteError naming it, HTTP and data errors stay DatasetErrors naming the URL.
 */
export async function openRemoteData(source: DataSource & { kind: 'remote' }, welcome: WelcomeMessage): Promise<RemoteDataFile> {
  try {
    return await RemoteDataFile.open(source.source, welcome.sha256, { rows: welcome.rows, features: welcome.features });
  } catch (error) {
    if (error instanceof DptError) throw error;
    throw new WriteError(
      `cannot use the data cache in ${cacheDirectory()} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); set DPT_CACHE_DIR to a writable folder`,
      {
        cause: error,
      },
    );
  }
}
