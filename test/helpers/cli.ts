// Starts the real dpt CLI (dist/cli/main.js) as child processes, records each by PID, and
// kills whatever is left in cleanup. Every wait has a deadline.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(REPO, 'dist', 'cli', 'main.js');

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout or stderr line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with every match of `pattern` (made global) once stdout + stderr hold at least `count`. */
  waitForCount(pattern: RegExp, count: number, timeoutMs?: number): Promise<RegExpMatchArray[]>;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

/**
 * `launcher`: a command that execs its trailing arguments (e.g. `unshare -m sh -c '… exec "$@"' sh`),
 * so dpt runs under it with the same PID; empty: dpt is started directly.
 */
export function startCli(args: string[], env: Record<string, string> = {}, launcher: readonly string[] = []): CliProcess {
  const [command, ...prefix] = launcher.length === 0 ? [process.execPath] : [...launcher, process.execPath];
  return startProgram(command!, [...prefix, CLI], args, { cwd: REPO, env: { ...process.env, ...env } }); // command: launcher[0] or node
}

/**
 * Starts `command` with `prefix` then `args` (messages name `args`) as a recorded child, e.g. the
 * `dpt` of an installed package; killAll kills it by PID like the others.
 */
export function startProgram(
  command: string,
  prefix: readonly string[],
  args: string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv },
): CliProcess {
  const child = spawn(command, [...prefix, ...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start dpt ${args.join(' ')}`);
  started.add(child);
  let out = '';
  let err = '';
  // Each watcher looks at the whole output so far and says when it is satisfied.
  const watchers: { isDone: (output: string) => boolean }[] = [];
  const check = (): void => {
    for (const watcher of [...watchers]) {
      if (watcher.isDone(out + err)) watchers.splice(watchers.indexOf(watcher), 1);
    }
  };
  const waitFor = <T>(find: (output: string) => T | null, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms.\nstdout:\n${out}\nstderr:\n${err}`)), timeoutMs);
      watchers.push({
        isDone: (output) => {
          const found = find(output);
          if (found === null) return false;
          clearTimeout(timer);
          resolve(found);
          return true;
        },
      });
      check();
    });
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    check();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    check();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    waitForLine: (pattern, timeoutMs = 30_000) => waitFor((output) => output.match(pattern), `no line matching ${pattern}`, timeoutMs),
    waitForCount: (pattern, count, timeoutMs = 30_000) =>
      waitFor(
        (output) => {
          const matches = [...output.matchAll(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`))];
          return matches.length >= count ? matches : null;
        },
        `fewer than ${count} lines matching ${pattern}`,
        timeoutMs,
      ),
    exited: (timeoutMs = 60_000) =>
      Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`dpt ${args.join(' ')} still running after ${timeoutMs} ms.\nstdout:\n${out}\nstderr:\n${err}`)),
            timeoutMs,
          ).unref(),
        ),
      ]),
  };
}

/** Runs dpt to completion and returns its exit code and output. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = startCli(args, env);
  const { code } = await cli.exited(timeoutMs);
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** Kills every process started by this file's helpers that is still running (by PID). */
export function killAll(): void {
  for (const child of started) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGCONT'); // a stopped process must run to die of SIGKILL cleanly
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Exited between the check and the kill.
      }
    }
  }
  started.clear();
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function temporaryDirectory(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'dpt-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
