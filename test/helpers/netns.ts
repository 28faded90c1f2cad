// Multi-host tests without Docker: each "host" is a Linux network namespace with one veth link
// to a bridge in a switch namespace, so a link can be cut and healed. Also turns a service of
// docker-compose.yml into the process and environment its container would run. Every process
// is recorded and killed by PID in destroy(); every namespace is deleted there; every wait has
// a deadline. Needs root and iproute2; nothing is added to the host's own network namespace.

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';

/**
 * Why the network-namespace tests cannot run here, or null when they can: they need root,
 * `ip` (iproute2), and the right to create a namespace (a container may deny it even to root).
 */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (CI runs as root; e.g. sudo npx vitest run test/integration/netns-cluster.test.ts)';
  const probe = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return `needs the ip command (iproute2): ${probe.error?.message ?? probe.stderr.trim()}`;
  const name = `dpt-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.error !== undefined || add.status !== 0) return `cannot create a network namespace: ${add.error?.message ?? add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'delete', name]);
  return null;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A process running inside one namespace, with its output kept line by line. */
export interface LabProcess {
  readonly pid: number;
  readonly host: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first line (stdout or stderr, past or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Every line so far (stdout and stderr) that matches `pattern`. */
  linesMatching(pattern: RegExp): RegExpMatchArray[];
  exited(timeoutMs: number): Promise<ExitStatus>;
  isRunning(): boolean;
}

const COMMAND_TIMEOUT_MS = 10_000;

/** A switch namespace with a bridge, and hosts (namespaces) attached to it by veth pairs. */
export class NetnsLab {
  /** Unique per test process, so concurrent runs never share a namespace name. */
  readonly prefix: string;
  private readonly switchNs: string;
  private readonly namespaces: string[] = [];
  private readonly hosts = new Map<string, { ns: string; address: string }>();
  private readonly children = new Set<ChildProcess>();

  constructor(tag: string) {
    this.prefix = `${tag}${process.pid}`;
    this.switchNs = `${this.prefix}-sw`;
    try {
      this.createNamespace(this.switchNs);
      ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  /** Adds host `name` with `address`/24 on its eth0, cabled to the switch as port p-`name`. */
  addHost(name: string, address: string): void {
    const ns = `${this.prefix}-${name}`;
    // Recorded before anything can fail, so destroy() removes a half-made host too.
    this.createNamespace(ns);
    // Both ends are created inside namespaces: the bridge port in the switch, eth0 in the host.
    ip('-n', this.switchNs, 'link', 'add', `p-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', this.switchNs, 'link', 'set', `p-${name}`, 'master', 'br0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    this.hosts.set(name, { ns, address });
  }

  address(name: string): string {
    return this.host(name).address;
  }

  /** Cuts (false) or heals (true) the host's cable at the switch. */
  setLink(name: string, isUp: boolean): void {
    this.host(name);
    ip('-n', this.switchNs, 'link', 'set', `p-${name}`, isUp ? 'up' : 'down');
  }

  /** Starts `argv` inside host `name` with exactly `env` (nothing inherited). */
  start(name: string, argv: readonly string[], env: Readonly<Record<string, string>>): LabProcess {
    const { ns } = this.host(name);
    // `ip netns exec` execs the command in place, so the child's PID is the program's own.
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: { ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')} in ${ns}`);
    this.children.add(child);
    return watchProcess(child, name, argv, () => this.children.delete(child));
  }

  /** Runs a short command inside host `name`; resolves with its exit code and output (killed at the deadline). */
  run(name: string, argv: readonly string[], env: Readonly<Record<string, string>>, timeoutMs: number): Promise<ExitStatus & { stdout: string }> {
    const process_ = this.start(name, argv, env);
    return process_.exited(timeoutMs).then(
      (status) => ({ ...status, stdout: process_.stdout() }),
      (error: unknown) => {
        killPid(process_.pid);
        throw error;
      },
    );
  }

  /** Kills every process still running (by PID), then deletes every namespace. */
  destroy(): void {
    for (const child of this.children) {
      if (child.pid !== undefined) killPid(child.pid);
    }
    this.children.clear();
    for (const ns of this.namespaces.reverse()) {
      // Deleting a namespace also removes the veth ends inside it.
      spawnSync('ip', ['netns', 'del', ns], { timeout: COMMAND_TIMEOUT_MS });
    }
    this.namespaces.length = 0;
  }

  private createNamespace(ns: string): void {
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
  }

  private host(name: string): { ns: string; address: string } {
    const host = this.hosts.get(name);
    if (host === undefined) throw new Error(`no host ${name} in this lab`);
    return host;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already exited between the bookkeeping and the kill.
  }
}

function watchProcess(child: ChildProcess, host: string, argv: readonly string[], onExit: () => void): LabProcess {
  let out = '';
  let err = '';
  const lines: string[] = [];
  const watchers: { pattern: RegExp; resolve: (match: RegExpMatchArray) => void }[] = [];
  const partial = { stdout: '', stderr: '' };
  const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    const text = chunk.toString();
    if (stream === 'stdout') out += text;
    else err += text;
    const pieces = (partial[stream] + text).split('\n');
    partial[stream] = pieces.pop() ?? '';
    for (const line of pieces) {
      lines.push(line);
      for (const watcher of [...watchers]) {
        const match = line.match(watcher.pattern);
        if (match !== null) {
          watchers.splice(watchers.indexOf(watcher), 1);
          watcher.resolve(match);
        }
      }
    }
  };
  child.stdout?.on('data', onData('stdout'));
  child.stderr?.on('data', onData('stderr'));
  let status: ExitStatus | null = null;
  const exit = new Promise<ExitStatus>((resolve) => {
    child.on('exit', (code, signal) => {
      status = { code, signal };
      onExit();
      resolve(status);
    });
  });
  const describe = (): string => `${argv.join(' ')} in ${host}\n--- stdout (tail)\n${out.slice(-3000)}\n--- stderr (tail)\n${err.slice(-3000)}`;
  return {
    pid: child.pid ?? -1,
    host,
    stdout: () => out,
    stderr: () => err,
    isRunning: () => status === null,
    linesMatching: (pattern) => lines.map((line) => line.match(pattern)).filter((match): match is RegExpMatchArray => match !== null),
    waitForLine: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const earlier = lines.map((line) => line.match(pattern)).find((match) => match !== null);
        if (earlier !== undefined && earlier !== null) return resolve(earlier);
        const timer = setTimeout(() => {
          watchers.splice(watchers.indexOf(watcher), 1);
          reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms from ${describe()}`));
        }, timeoutMs);
        const watcher = {
          pattern,
          resolve: (match: RegExpMatchArray) => {
            clearTimeout(timer);
            resolve(match);
          },
        };
        watchers.push(watcher);
      }),
    exited: (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms: ${describe()}`)), timeoutMs);
      });
      return Promise.race([exit, deadline]).finally(() => clearTimeout(timer));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml services as processes.

/** How a compose service's container maps onto this machine. */
export interface ServiceMapping {
  /** Compose variables (as a shell would provide them); nothing else is read from the environment. */
  readonly variables: Readonly<Record<string, string>>;
  /** Service name → the address of the namespace that runs it (replaces the service's DNS name). */
  readonly serviceAddresses: Readonly<Record<string, string>>;
  /** Named volume → host folder standing in for it. */
  readonly volumes: Readonly<Record<string, string>>;
  /** Secret name → host file standing in for /run/secrets/NAME. */
  readonly secrets: Readonly<Record<string, string>>;
}

/** The process a service's container runs: argv (entrypoint + command) and its environment. */
export interface ServiceProcess {
  readonly argv: string[];
  readonly env: Record<string, string>;
  /** The healthcheck's command (CMD form), mapped like argv; null without a healthcheck. */
  readonly healthcheck: string[] | null;
}

/**
 * Translates service `name` of `composePath` (built from `dockerfilePath`'s final stage) into a
 * process on this machine: `node` is this Node, /app is the repository, bind-mount targets are
 * their host sources, volumes and secrets are the given stand-ins, service names are addresses.
 * Throws on anything it cannot map (e.g. a shell-form command), so the test runs what compose runs.
 */
export function composeServiceProcess(composePath: string, dockerfilePath: string, name: string, mapping: ServiceMapping): ServiceProcess {
  const projectDir = resolve(composePath, '..');
  const doc = interpolateTree(parse(readFileSync(composePath, 'utf8'), { merge: true }), mapping.variables);
  const services = asRecord(asRecord(doc, 'the compose file').services, 'services');
  const service = asRecord(services[name], `service ${name}`);
  const image = readRuntimeStage(dockerfilePath);

  // Container path prefix → host path, longest first.
  const mounts: [string, string][] = [[image.workdir, image.appRoot]];
  for (const volume of asArray(service.volumes ?? [], `${name}.volumes`)) {
    const [source, target] = parseVolume(volume, name);
    if (source.startsWith('.') || isAbsolute(source)) mounts.push([target, resolve(projectDir, source)]);
    else {
      const stand = mapping.volumes[source];
      if (stand === undefined) throw new Error(`no stand-in folder for volume ${source} of service ${name}`);
      mounts.push([target, stand]);
    }
  }
  for (const secret of asArray(service.secrets ?? [], `${name}.secrets`)) {
    const source = typeof secret === 'string' ? secret : String(asRecord(secret, 'secret').source);
    const target = typeof secret === 'string' ? `/run/secrets/${secret}` : String(asRecord(secret, 'secret').target ?? `/run/secrets/${source}`);
    const stand = mapping.secrets[source];
    if (stand === undefined) throw new Error(`no stand-in file for secret ${source} of service ${name}`);
    mounts.push([isAbsolute(target) ? target : `/run/secrets/${target}`, stand]);
  }
  mounts.sort((a, b) => b[0].length - a[0].length);
  const mapValue = (value: string): string => {
    for (const [container, host] of mounts) {
      if (value === container || value.startsWith(`${container}/`)) return host + value.slice(container.length);
    }
    let mapped = value;
    for (const [serviceName, address] of Object.entries(mapping.serviceAddresses)) {
      // A service name as a URL's host (ws://coordinator:8787) or as host:port, never a bare word.
      mapped = mapped.replace(
        new RegExp(`(//)${serviceName}(?=[:/]|$)|^${serviceName}(?=:\\d+$)`, 'g'),
        (_, slashes: string | undefined) => `${slashes ?? ''}${address}`,
      );
    }
    return mapped;
  };
  const mapArgv = (argv: string[]): string[] => argv.map((arg, i) => (i === 0 && arg === 'node' ? process.execPath : mapValue(arg)));

  const command = service.command === undefined ? image.cmd : execForm(service.command, `${name}.command`);
  const entrypoint = service.entrypoint === undefined ? image.entrypoint : execForm(service.entrypoint, `${name}.entrypoint`);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...image.env };
  for (const [key, value] of environmentEntries(service.environment, name)) env[key] = mapValue(value);

  let healthcheck: string[] | null = null;
  if (service.healthcheck !== undefined) {
    const test = asArray(asRecord(service.healthcheck, `${name}.healthcheck`).test, `${name}.healthcheck.test`).map(String);
    if (test[0] !== 'CMD') throw new Error(`${name}.healthcheck.test must use the CMD form, not ${test[0]}`);
    healthcheck = mapArgv(test.slice(1));
  }
  return { argv: mapArgv([...entrypoint, ...command]), env, healthcheck };
}

interface RuntimeStage {
  readonly workdir: string;
  /** The host folder that stands in for the image's /app (the repository). */
  readonly appRoot: string;
  readonly entrypoint: string[];
  readonly cmd: string[];
  readonly env: Record<string, string>;
}

/** WORKDIR, ENV, ENTRYPOINT and CMD of the Dockerfile's last stage (exec forms only). */
function readRuntimeStage(dockerfilePath: string): RuntimeStage {
  const text = readFileSync(dockerfilePath, 'utf8');
  const stage = text.slice(text.lastIndexOf('\nFROM ') + 1).split('\n');
  let workdir = '/';
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  const env: Record<string, string> = {};
  for (const line of stage) {
    const [instruction = '', ...rest] = line.trim().split(/\s+/);
    const argument = line.trim().slice(instruction.length).trim();
    if (instruction === 'WORKDIR') workdir = argument;
    else if (instruction === 'ENTRYPOINT') entrypoint = jsonArray(argument, 'ENTRYPOINT');
    else if (instruction === 'CMD') cmd = jsonArray(argument, 'CMD');
    else if (instruction === 'ENV') {
      for (const pair of rest) {
        const equals = pair.indexOf('=');
        if (equals < 1) throw new Error(`Dockerfile ENV ${argument}: only the KEY=value form is understood`);
        env[pair.slice(0, equals)] = pair.slice(equals + 1);
      }
    }
  }
  return { workdir, appRoot: resolve(dockerfilePath, '..'), entrypoint, cmd, env };
}

function jsonArray(text: string, what: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`Dockerfile ${what} must be the exec (JSON array) form`);
  return value;
}

function execForm(value: unknown, what: string): string[] {
  if (!Array.isArray(value)) throw new Error(`${what} must be a list (exec form), got ${JSON.stringify(value)}`);
  return value.map(String);
}

function parseVolume(volume: unknown, service: string): [string, string] {
  if (typeof volume === 'string') {
    const [source, target] = volume.split(':');
    if (source === undefined || target === undefined) throw new Error(`volume ${volume} of service ${service} has no source:target`);
    return [source, target];
  }
  const long = asRecord(volume, `a volume of ${service}`);
  return [String(long.source), String(long.target)];
}

function environmentEntries(raw: unknown, service: string): [string, string][] {
  if (raw === undefined) return [];
  if (Array.isArray(raw)) {
    return raw.map((entry) => {
      const text = String(entry);
      const equals = text.indexOf('=');
      if (equals < 0) throw new Error(`${service}.environment ${text}: a value from the caller's shell is not supported here`);
      return [text.slice(0, equals), text.slice(equals + 1)];
    });
  }
  return Object.entries(asRecord(raw, `${service}.environment`)).map(([key, value]) => [key, value === null ? '' : String(value)]);
}

/** Compose interpolation of every string in the tree: ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$. */
export function interpolate(text: string, variables: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced, operator, fallback, bare) => {
    if (whole === '$$') return '$';
    const key = (braced ?? bare) as string;
    const value = variables[key];
    if (operator === ':-') return value === undefined || value === '' ? (fallback as string) : value;
    if (operator === '-') return value ?? (fallback as string);
    return value ?? '';
  });
}

function interpolateTree(node: unknown, variables: Readonly<Record<string, string>>): unknown {
  if (typeof node === 'string') return interpolate(node, variables);
  if (Array.isArray(node)) return node.map((item) => interpolateTree(item, variables));
  if (typeof node === 'object' && node !== null) {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, interpolateTree(value, variables)]));
  }
  return node;
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a mapping`);
  return value as Record<string, unknown>;
}

function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}
