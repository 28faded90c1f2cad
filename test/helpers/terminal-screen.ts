// What a terminal shows after a program's output: the rows left once carriage returns, line
// feeds and the erase sequences the CLI uses (ESC[2K, ESC[K) are applied; other escape
// sequences are dropped. Enough to see whether a log line was glued to a progress line.

/** What follows ESC in a control sequence: `[`, parameters, a final byte (ESC itself is matched by the caller). */
const CSI = /^\[([0-9;?]*)([@-~])/;

/** The rows a terminal would show for `output` (no scrolling limit, no wrapping). */
export function renderScreen(output: string): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let column = 0;
  for (let i = 0; i < output.length; i++) {
    const char = output[i]!;
    if (char === '\x1b') {
      // CSI: ESC [ parameters final-byte.
      const match = CSI.exec(output.slice(i + 1, i + 16));
      if (match === null) continue;
      i += match[0].length;
      const [, parameter, final] = match;
      if (final === 'K') {
        const line = rows[row]!;
        if (parameter === '2') line.length = 0;
        else if (parameter === '' || parameter === '0') line.length = Math.min(line.length, column);
      }
      continue;
    }
    if (char === '\r') column = 0;
    else if (char === '\n') {
      row++;
      column = 0;
      rows[row] ??= [];
    } else {
      const line = rows[row]!;
      while (line.length < column) line.push(' ');
      line[column] = char;
      column++;
    }
  }
  return rows.map((line) => line.join('').trimEnd());
}
