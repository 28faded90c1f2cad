// `dpt … --help` as a user reads it (issue #14 item 5): every command, found by walking the
// "Commands:" lists from `dpt --help` down, ends with an Examples section whose lines use only
// flags that command has; required options are marked and shown in the usage line; the data
// flags say which formats are read.

import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/** Help text by command path ('' for dpt itself). */
const helps = new Map<string, string>();

async function help(path: string): Promise<string> {
  const result = await runCli([...(path === '' ? [] : path.split(' ')), '--help'], {}, 60_000);
  expect(result.code).toBe(0);
  return result.stdout;
}

/** The command names listed under "Commands:" (without help). */
function subcommands(text: string): string[] {
  const section = /\nCommands:\n([\s\S]*?)(?:\n\n|$)/.exec(text)?.[1] ?? '';
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((match) => match[1]!).filter((name) => name !== 'help');
}

/** The long flags of a help text's Options section. */
function flagsOf(text: string): Set<string> {
  const section = /\nOptions:\n([\s\S]*?)\n\n/.exec(text)?.[1] ?? '';
  return new Set([...section.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((match) => match[1]!));
}

function examplesOf(text: string): string[] {
  const section = /\nExamples:\n([\s\S]*)$/.exec(text)?.[1] ?? '';
  return [...section.matchAll(/^ {2}\$ (.+)$/gm)].map((match) => match[1]!);
}

beforeAll(async () => {
  // Breadth-first over the tree, bounded by its size: a command lists at most a few dozen others.
  const queue = [''];
  for (let visited = 0; visited < queue.length && visited < 100; visited++) {
    const path = queue[visited]!;
    const text = await help(path);
    helps.set(path, text);
    for (const name of subcommands(text)) queue.push(path === '' ? name : `${path} ${name}`);
  }
}, 300_000);

describe('dpt --help', () => {
  it('reaches every command, data subcommands included', () => {
    expect([...helps.keys()].sort()).toEqual(
      ['', 'coordinator', 'data', 'data convert', 'data generate', 'data info', 'evaluate', 'export', 'monitor', 'predict', 'relay', 'train', 'worker'].sort(),
    );
  });

  it('ends each command with examples that run that command with flags it has', () => {
    for (const [path, text] of helps) {
      const examples = examplesOf(text);
      expect(examples.length, `dpt ${path} --help has no Examples section`).toBeGreaterThan(0);
      for (const example of examples) {
        const command = example.replace(/\s+#.*$/, '').replace(/\s*>.*$/, '');
        expect(command.startsWith(path === '' ? 'dpt ' : `dpt ${path} `), `example of dpt ${path}: ${example}`).toBe(true);
        // The command an example runs: the longest known path it starts with.
        const words = command.split(/\s+/).slice(1);
        let target = '';
        for (let length = 1; length <= words.length; length++) {
          if (helps.has(words.slice(0, length).join(' '))) target = words.slice(0, length).join(' ');
        }
        const known = flagsOf(helps.get(target)!);
        for (const flag of words.filter((word) => word.startsWith('--'))) {
          expect(known.has(flag), `dpt ${target} has no ${flag} (example: ${example})`).toBe(true);
        }
      }
    }
  });

  it('marks the required options and names them in the usage line', () => {
    const required: Record<string, string[]> = {
      train: ['--data <path>'],
      coordinator: ['--data <path>'],
      worker: ['--connect <url>'],
      relay: ['--connect <url>'],
      predict: ['--model <path>', '--data <path>'],
      evaluate: ['--model <path>', '--data <path>'],
      'data generate': ['--rows <n>', '--features <d>', '--out <path>'],
    };
    for (const [path, text] of helps) {
      const marked = [...text.matchAll(/^ {2}(--[\w-]+(?: [<[][^>\]]+[>\]])?) +\(required\)/gm)].map((match) => match[1]!);
      expect(marked, `dpt ${path} --help`).toEqual(required[path] ?? []);
      const usage = /^Usage: (.+)$/m.exec(text)?.[1] ?? '';
      for (const flag of marked) expect(usage, `dpt ${path} usage`).toContain(flag);
    }
  });

  it('says which data formats --data reads, wherever it reads one', () => {
    for (const path of ['train', 'coordinator', 'predict', 'evaluate', 'worker']) {
      const text = helps.get(path)!.slice(helps.get(path)!.indexOf('\nOptions:')).replace(/\s+/g, ' ');
      const data = / --data <[^>]+> (.*?) --/.exec(text)?.[1] ?? '';
      expect(data, `dpt ${path} --data`).toMatch(/CSV/);
      expect(data, `dpt ${path} --data`).toMatch(/\.csv\.gz/);
      expect(data, `dpt ${path} --data`).toMatch(/\.dpt/);
    }
  });
});
