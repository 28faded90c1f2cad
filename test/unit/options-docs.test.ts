// README.md's table of the training flags is the one generated from the options table: a flag, a
// default or a "changes the result" mark changed in coordinator/options-table.ts without the
// README (`npm run docs:options`) fails here.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPTIONS_TABLE_BEGIN, OPTIONS_TABLE_END, optionsTableMarkdown, withOptionsTable } from '../../coordinator/options-docs.js';
import { TRAINING_OPTIONS } from '../../coordinator/options-table.js';

const README = new URL('../../README.md', import.meta.url);

describe("README.md's table of training flags", () => {
  it('is the table generated from coordinator/options-table.ts (npm run docs:options writes it)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain(OPTIONS_TABLE_BEGIN);
    expect(readme).toContain(OPTIONS_TABLE_END);
    expect(readme).toBe(withOptionsTable(readme));
  });

  it('has one line per flag, a --no- switch on the line of its flag, and whether it changes the result', () => {
    const lines = optionsTableMarkdown().split('\n').slice(2);
    const switches = TRAINING_OPTIONS.filter((row) => row.flag.startsWith('--no-')).length;
    expect(lines).toHaveLength(TRAINING_OPTIONS.length - switches);
    expect(lines).toContain(
      '| `--shuffle [mode]` / `--no-shuffle` | rows | yes | a seeded permutation of the training rows every epoch (`rows`), of blocks of `--block-rows` rows (`blocks`; see Big data sets), or file order (`none`) |',
    );
    expect(lines.find((line) => line.startsWith('| `--label-column <name\\|index>` | last column | yes |'))).toBeDefined();
    expect(lines.find((line) => line.startsWith('| `--max-classes <n>` | 1,000 | no |'))).toBeDefined();
    expect(lines.find((line) => line.startsWith('| `--heartbeat <ms>` | 5000 | no |'))).toBeDefined();
  });

  it('is put between the markers, replacing what was there', () => {
    const stale = `intro\n${OPTIONS_TABLE_BEGIN}\n| old | table |\n${OPTIONS_TABLE_END}\nrest`;
    expect(withOptionsTable(stale)).toBe(`intro\n${OPTIONS_TABLE_BEGIN}\n${optionsTableMarkdown()}\n${OPTIONS_TABLE_END}\nrest`);
    expect(() => withOptionsTable('no markers')).toThrow(/lacks the markers/);
  });
});
