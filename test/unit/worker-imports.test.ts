// A worker process loads no coordinator module (issue #11 item 5: start-up time on every host),
// also now that `dpt worker` runs through the library's startWorker (issue #14 item 8). Checked on
// the static import graph from the worker's entry points.

import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/** Every project file reachable from `entry` by static `import … from './x.js'` (type-only imports skipped). */
function staticImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [resolve(ROOT, entry)];
  while (queue.length > 0 && seen.size < 2000) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?\sfrom\s+'(\.[^']+)'/gms)) {
      queue.push(join(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
    }
  }
  return new Set([...seen].map((file) => relative(ROOT, file)));
}

describe('what a worker process loads', () => {
  it('the library worker reaches worker/ and shared/, never coordinator/ or the relay', () => {
    const files = staticImports('api/worker.ts');
    expect(files.has('worker/client.ts')).toBe(true);
    expect([...files].filter((file) => !file.startsWith('worker/') && !file.startsWith('shared/') && file !== 'api/worker.ts')).toEqual([]);
  });

  it("the CLI's entry (what `dpt worker` runs) imports the training flags, data and relay commands only when it is not a worker", () => {
    const files = staticImports('cli/main.ts');
    for (const heavy of ['cli/coordinator-flags.ts', 'coordinator/options-table.ts', 'cli/data.ts', 'cli/relay.ts'])
      expect(files.has(heavy), heavy).toBe(false);
    const source = readFileSync(resolve(ROOT, 'cli/main.ts'), 'utf8');
    // Each is imported inside the one branch that a worker process skips.
    const branches = [...source.matchAll(/if \(!isWorkerCommand\) \{([\s\S]*?)\n\}/g)].map((match) => match[1]!).join('\n');
    for (const module of ['./coordinator-flags.js', './relay.js', './data.js']) expect(branches).toContain(`await import('${module}')`);
  });

  it('the scan sees coordinator modules where they are imported (the check can fail)', () => {
    expect(staticImports('api/runs.ts').has('coordinator/run.ts')).toBe(true);
  });
});
