// Checks what the coordinator's flags name that a parser cannot see — the address to listen on
// and the TLS certificate and key — before any work starts (reading or converting the data,
// spawning workers), so each fails with one line naming the flag and exit code 2 (issue #10,
// item 18). listenError also maps a bind that fails later (the port taken in between).

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { CoordinatorConfig } from '../coordinator/config.js';
import { ConfigError } from '../shared/errors.js';

/** Every check of this file for a coordinator's resolved config: TLS first (no socket), then the bind. */
export async function checkCoordinatorConfig(config: CoordinatorConfig): Promise<void> {
  checkTlsPair(config.tlsCertPath, config.tlsKeyPath);
  await checkListenAddress(config.host, config.port);
}

/** Why a bind failed, by errno code, in the user's terms. */
const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the port is already in use',
  EADDRNOTAVAIL: 'not an address of this machine',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EPERM: 'permission denied',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved now',
  EAFNOSUPPORT: 'address family not supported',
  EINVAL: 'not a valid address to listen on',
};

/** A failed bind of host:port (or of a Unix socket path) as one line naming what to change; null when `error` is not a bind error. */
export function listenError(error: unknown, host: string, port: number): ConfigError | null {
  const errno = error as NodeJS.ErrnoException | null;
  if (errno === null || typeof errno !== 'object' || typeof errno.code !== 'string') return null;
  if (errno.syscall !== 'listen' && errno.syscall !== 'bind' && errno.syscall !== 'getaddrinfo') return null;
  const problem = LISTEN_PROBLEMS[errno.code] ?? errno.message;
  // The Unix socket of dpt train's local workers: no flag names it, TMPDIR names its folder.
  if (host.includes('/'))
    return new ConfigError(`cannot listen on the local workers' socket ${host}: ${problem} (${errno.code}); set TMPDIR to a writable folder`);
  const flag = errno.code === 'EADDRINUSE' || errno.code === 'EACCES' ? `--port ${port}` : `--host ${host}`;
  return new ConfigError(`${flag}: cannot listen on ${host}:${port}: ${problem} (${errno.code})`);
}

/**
 * Binds host:port and releases it at once, so a taken port or a foreign address is refused before
 * the data is read. A listening socket that never accepted leaves no TIME_WAIT: the real bind that
 * follows gets the same port (and a port taken in between still fails there, mapped by listenError).
 */
export async function checkListenAddress(host: string, port: number): Promise<void> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, () => resolve());
    });
  } catch (error) {
    throw listenError(error, host, port) ?? new ConfigError(`--host ${host} --port ${port}: cannot listen (${String(error)})`);
  } finally {
    await new Promise<void>((resolve) => {
      if (probe.listening) probe.close(() => resolve());
      else resolve();
    });
  }
}

/** Reads and parses --tls-cert and --tls-key, and checks that the key is the certificate's. */
export function checkTlsPair(certPath: string | null, keyPath: string | null): void {
  if (certPath === null && keyPath === null) return;
  if (certPath === null || keyPath === null) throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  const cert = readPem('--tls-cert', certPath);
  const key = readPem('--tls-key', keyPath);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError(`--tls-cert ${certPath}: not a PEM certificate (${(error as Error).message})`);
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error('the key is not the certificate’s');
  } catch (error) {
    const problem = (error as Error).message;
    throw new ConfigError(`--tls-key ${keyPath}: not the PEM private key of --tls-cert ${certPath} (${problem})`);
  }
  try {
    // What https.createServer will do with them: fails on what the checks above let through.
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError(`--tls-cert ${certPath}, --tls-key ${keyPath}: TLS cannot use them (${(error as Error).message})`);
  }
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}
