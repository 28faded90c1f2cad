// README.md's table of the training flags, generated from the options table (options-table.ts),
// so the documented flags, defaults and "changes the result" marks cannot drift from the CLI.
// test/unit/options-docs.test.ts checks that README.md holds exactly this table between its markers;
// `npm run docs:options` writes it there.

import { TRAINING_OPTIONS } from './options-table.js';

/** The markers around the generated table in README.md. */
export const OPTIONS_TABLE_BEGIN = '<!-- training options: generated from coordinator/options-table.ts; test/unit/options-docs.test.ts checks it -->';
export const OPTIONS_TABLE_END = '<!-- end of training options -->';

/** Text inside a Markdown table cell: a | would end the cell. */
const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** The table's Markdown: one line per flag, a --no-x switch on its --x flag's line. */
export function optionsTableMarkdown(): string {
  const lines = ['| flag | default | changes the result | meaning |', '| --- | --- | --- | --- |'];
  for (const row of TRAINING_OPTIONS) {
    if (row.flag.startsWith('--no-') && TRAINING_OPTIONS.some((other) => other.flag === `--${row.flag.slice(5)}`)) continue;
    const negation = TRAINING_OPTIONS.find((other) => other.flag === `--no-${row.flag.slice(2)}`);
    const flag = `\`${row.value === null ? row.flag : `${row.flag} ${row.value}`}\`${negation === undefined ? '' : ` / \`${negation.flag}\``}`;
    lines.push(`| ${cell(flag)} | ${cell(row.defaultText)} | ${row.changesResult ? 'yes' : 'no'} | ${cell(row.docs)} |`);
  }
  return lines.join('\n');
}

/** README.md's text with the generated table put between the markers; throws when they are missing. */
export function withOptionsTable(readme: string): string {
  const begin = readme.indexOf(OPTIONS_TABLE_BEGIN);
  const end = readme.indexOf(OPTIONS_TABLE_END);
  if (begin < 0 || end < begin) throw new Error('README.md lacks the markers of the training options table');
  return `${readme.slice(0, begin + OPTIONS_TABLE_BEGIN.length)}\n${optionsTableMarkdown()}\n${readme.slice(end)}`;
}
