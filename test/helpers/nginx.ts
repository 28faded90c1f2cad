// A real HTTP server with Range support for tests: Debian's nginx, started in the foreground on
// 127.0.0.1 with a temporary config (a port from a free-port probe, its own pid file and logs),
// serving one folder at / (with Range) and the same folder at /norange/ (max_ranges 0: every
// request gets 200 and the whole file). Killed by PID in stop(). CI installs nginx (.ci/run).

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

export interface NginxServer {
  readonly port: number;
  /** Base URL, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** Lines of nginx's access log so far (one per request). */
  accessLog(): string;
  stop(): void;
}

const NGINX_CANDIDATES = ['/usr/sbin/nginx', 'nginx'];

/** The nginx binary, or null; `why` says what was tried. */
export function findNginx(): { path: string | null; why: string } {
  for (const candidate of NGINX_CANDIDATES) {
    const probe = spawnSync(candidate, ['-v'], { encoding: 'utf8' });
    if (probe.error === undefined && probe.status === 0) return { path: candidate, why: '' };
  }
  return { path: null, why: 'nginx is not installed (apt-get install nginx-light; .ci/run installs it)' };
}

/** A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects after `timeoutMs` or when `child` exits. */
async function waitForPort(port: number, child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr()}`);
    const isOpen = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (isOpen) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20)); // a retry interval, bounded by the deadline
  }
  throw new Error(`nginx did not listen on ${port} within ${timeoutMs} ms: ${stderr()}`);
}

/** Starts nginx serving `root` (and its scratch files in `workDirectory`); stop() kills it by PID. */
export async function startNginx(binary: string, root: string, workDirectory: string): Promise<NginxServer> {
  const port = await freePort();
  const config = join(workDirectory, 'nginx.conf');
  const access = join(workDirectory, 'access.log');
  const temp = (name: string): string => join(workDirectory, name);
  writeFileSync(
    config,
    `# Written by test/helpers/nginx.ts
user root;
worker_processes 1;
daemon off;
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} warn;
events { worker_connections 64; }
http {
  access_log ${access};
  client_body_temp_path ${temp('client_body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /norange/ { alias ${root}/; max_ranges 0; }
  }
}
`,
  );
  const child = spawn(binary, ['-c', config, '-p', workDirectory], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stop = (): void => {
    const master = child.pid;
    if (master === undefined || child.exitCode !== null) return;
    // The master and its worker process, each by PID (a worker outlives a killed master otherwise).
    let workers: number[] = [];
    try {
      workers = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      // No /proc children list: the worker gets the master's TERM below.
    }
    for (const pid of [master, ...workers]) {
      try {
        process.kill(pid, pid === master ? 'SIGTERM' : 'SIGKILL');
      } catch {
        // Exited between the check and the kill.
      }
    }
  };
  try {
    await waitForPort(port, child, 10_000, () => stderr);
  } catch (error) {
    stop();
    throw error;
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    accessLog: () => (existsSync(access) ? readFileSync(access, 'utf8') : ''),
    stop,
  };
}
