// The one printer of a coordinator process (`dpt train`, `dpt coordinator`): every line it
// writes, log lines and result lines alike, goes through here, so that none is glued to the
// live progress line (issue #14 item 1). On a terminal the live line sits on stderr's last row:
// a line is written by clearing it, writing the line, and drawing it again. Off a TTY there is no
// live line and every line is written whole, one per line.

/** The part of a stream the printer uses (process.stdout/stderr, or a test's fake). */
export interface TextStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's width in characters, when it is one. */
  readonly columns?: number;
}

/** Erases the cursor's row and goes back to its first column. */
const CLEAR_ROW = '\r\x1b[2K';

export class TerminalPrinter {
  private readonly out: TextStream;
  private readonly err: TextStream;
  /** The live line as drawn (cut to the width), or '' when none is shown. */
  private live = '';

  /** `out` takes result lines (epoch lines, the summary), `err` log lines and the live line. */
  constructor(out: TextStream, err: TextStream) {
    this.out = out;
    this.err = err;
  }

  /**
   * Whether a live line is drawn at all: only when both streams are a terminal. A pipe or a file
   * gets whole lines only; and with stdout piped (`| tee`) its lines would reach the terminal
   * later than the live line drawn after them, glued to it.
   */
  get isLive(): boolean {
    return this.err.isTTY === true && this.out.isTTY === true;
  }

  /** A log line (stderr), on a row of its own. */
  log(line: string): void {
    this.writeLine(this.err, line);
  }

  /** A result line (stdout), on a row of its own. */
  print(line: string): void {
    this.writeLine(this.out, line);
  }

  /** Replaces the live line (a no-op off a terminal). */
  setLive(text: string): void {
    if (!this.isLive) return;
    // A line wider than the terminal would wrap, and clearing the last row would leave its start behind.
    const width = this.err.columns ?? 0;
    this.live = width > 1 && text.length >= width ? text.slice(0, width - 1) : text;
    this.err.write(`${CLEAR_ROW}${this.live}`);
  }

  /** Erases the live line, if one is shown. */
  clearLive(): void {
    if (this.live === '') return;
    this.err.write(CLEAR_ROW);
    this.live = '';
  }

  /** Leaves the live line on screen as it stands and ends its row (the run stopped or failed: what it showed last stays readable). */
  keepLive(): void {
    if (this.live === '') return;
    this.err.write('\n');
    this.live = '';
  }

  private writeLine(stream: TextStream, line: string): void {
    if (this.live === '') {
      stream.write(`${line}\n`);
      return;
    }
    // stdout and stderr of a TTY are written synchronously on Linux and macOS: the order holds.
    this.err.write(CLEAR_ROW);
    stream.write(`${line}\n`);
    this.err.write(this.live);
  }
}

/** Splits a byte stream (a child's stderr) into lines for `onLine`; call the result with each chunk, and with null at the end. */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string | null) => void {
  let partial = '';
  return (chunk) => {
    if (chunk === null) {
      if (partial !== '') onLine(partial);
      partial = '';
      return;
    }
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  };
}
