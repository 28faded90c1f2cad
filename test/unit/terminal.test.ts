import { describe, expect, it } from 'vitest';
import { ETA_MIN_MS, ETA_MIN_SHARE, ProgressPrinter, remainingMs } from '../../coordinator/progress.js';
import { lineSplitter, TerminalPrinter, type TextStream } from '../../coordinator/terminal.js';
import { renderScreen } from '../helpers/terminal-screen.js';

/** A fake stream recording what was written to it, into a shared transcript when given one (a TTY's two streams show on one screen). */
function stream(isTTY: boolean, transcript: string[], columns?: number): TextStream & { written: string[] } {
  const written: string[] = [];
  return {
    isTTY,
    ...(columns === undefined ? {} : { columns }),
    written,
    write: (text: string) => {
      written.push(text);
      transcript.push(text);
      return true;
    },
  };
}

describe('TerminalPrinter', () => {
  it('on a TTY, writes a log line on its own row and draws the live line again below it', () => {
    const screen: string[] = [];
    const terminal = new TerminalPrinter(stream(true, screen), stream(true, screen));
    terminal.setLive('epoch 1/2  step 3/10  loss 0.5000');
    terminal.log('step 3: 4 straggling chunk(s) also given to 1 idle worker(s)');
    terminal.print('epoch 1/2  step 5/10  loss 0.4000');
    terminal.setLive('epoch 2/2  step 6/10');
    expect(renderScreen(screen.join(''))).toEqual([
      'step 3: 4 straggling chunk(s) also given to 1 idle worker(s)',
      'epoch 1/2  step 5/10  loss 0.4000',
      'epoch 2/2  step 6/10',
    ]);
  });

  it('leaves the live line readable when the run ends, and the next line starts a row of its own', () => {
    const screen: string[] = [];
    const terminal = new TerminalPrinter(stream(true, screen), stream(true, screen));
    terminal.setLive('epoch 1/2  step 3/10');
    terminal.keepLive();
    terminal.log('dpt: stopped by SIGINT');
    expect(renderScreen(screen.join(''))).toEqual(['epoch 1/2  step 3/10', 'dpt: stopped by SIGINT', '']);
  });

  it('cuts a live line wider than the terminal (a wrapped line could not be erased)', () => {
    const screen: string[] = [];
    const err = stream(true, screen, 20);
    const terminal = new TerminalPrinter(stream(true, screen), err);
    terminal.setLive('x'.repeat(50));
    expect(renderScreen(screen.join(''))).toEqual(['x'.repeat(19)]);
  });

  it('off a TTY, draws no live line and writes every line whole, with no control characters', () => {
    const screen: string[] = [];
    const out = stream(false, screen);
    const err = stream(false, screen);
    const terminal = new TerminalPrinter(out, err);
    terminal.setLive('epoch 1/2  step 3/10');
    terminal.log('a log line');
    terminal.print('a result line');
    terminal.clearLive();
    terminal.keepLive();
    expect(err.written).toEqual(['a log line\n']);
    expect(out.written).toEqual(['a result line\n']);
  });

  it('draws no live line when stdout is piped and stderr a terminal (`| tee` would glue its lines to it)', () => {
    const screen: string[] = [];
    const err = stream(true, screen);
    const terminal = new TerminalPrinter(stream(false, screen), err);
    terminal.setLive('epoch 1/2  step 3/10');
    terminal.print('epoch 1/2  step 5/10');
    terminal.log('a log line');
    expect(err.written).toEqual(['a log line\n']);
  });
});

describe('lineSplitter', () => {
  it('gives whole lines across chunks, and the unterminated last one at the end', () => {
    const lines: string[] = [];
    const split = lineSplitter((line) => lines.push(line));
    split('one\ntw');
    split(Buffer.from('o\r\nthr'));
    split(null);
    expect(lines).toEqual(['one', 'two', 'thr']);
  });
});

describe('remainingMs (the ETA)', () => {
  it('is not shown before ETA_MIN_MS nor before ETA_MIN_SHARE of the steps', () => {
    expect(remainingMs(1, 46_999, 50_000, 47_000)).toBeNull(); // one step: far below 2 %
    expect(remainingMs(5_000, 5_000, ETA_MIN_MS - 1, 10_000)).toBeNull(); // half done, but within 3 s
    expect(remainingMs(0, 10, 10_000, 10)).toBeNull();
    expect(remainingMs(1000, 0, 10_000, 1000)).toBeNull(); // the run's last line: nothing left to estimate
  });

  it('is the time left at the rate measured so far, once both are reached', () => {
    const done = Math.ceil(ETA_MIN_SHARE * 1000);
    // 20 steps in 4 s: 0.2 s a step, 980 left.
    expect(remainingMs(done, 1000 - done, 4000, 1000)).toBeCloseTo(980 * 200, 6);
  });
});

describe('ProgressPrinter', () => {
  const step = (n: number, epoch: number) => ({
    type: 'step' as const,
    step: n,
    epoch,
    loss: 0.5,
    rows: 10,
    workers: 2,
    stepMs: 1,
    rowsPerSec: 10_000,
    time: 0,
  });

  it('says the backups of an epoch once, after its line, counting a pass once however many rounds it took', () => {
    const screen: string[] = [];
    const terminal = new TerminalPrinter(stream(false, screen), stream(false, screen));
    const printer = new ProgressPrinter(terminal, 4, 2, 2); // evaluates after epoch 2 only
    printer.backups('feature statistics over the 40 training rows', 3);
    printer.backups('feature statistics over the 40 training rows', 2);
    printer.handle(step(0, 0));
    printer.backups('step 1', 1);
    printer.handle(step(1, 0));
    printer.handle(step(2, 1));
    printer.handle(step(3, 1));
    const lines = screen.join('').split('\n');
    expect(lines[0]).toMatch(/^epoch 1\/2 {2}step 2\/4 {2}loss 0\.5000 {2}[\d,]+ rows\/s$/);
    expect(lines[1]).toBe('epoch 1: 6 straggling chunk(s) in 2 step(s) or pass(es) were also given to idle workers (backup tasks; --verbose lists them)');
    expect(lines.filter((line) => /straggling/.test(line))).toHaveLength(1);
  });

  it('announces the statistics pass off a TTY, and shows its share done on one', () => {
    const plain: string[] = [];
    const offTty = new ProgressPrinter(new TerminalPrinter(stream(false, plain), stream(false, plain)), 4, 1);
    offTty.pass({ purpose: 'stats', set: 'train', rows: 1_234_567, rowsDone: 0 });
    offTty.pass({ purpose: 'stats', set: 'train', rows: 1_234_567, rowsDone: 1_234_567 });
    offTty.pass({ purpose: 'eval', set: 'validation', rows: 10, rowsDone: 0 });
    expect(plain.join('')).toBe('computing feature statistics over 1,234,567 training rows…\n');
    const screen: string[] = [];
    const onTty = new ProgressPrinter(new TerminalPrinter(stream(true, screen), stream(true, screen)), 4, 1);
    onTty.pass({ purpose: 'stats', set: 'train', rows: 200, rowsDone: 0 });
    onTty.pass({ purpose: 'stats', set: 'train', rows: 200, rowsDone: 200 });
    expect(renderScreen(screen.join(''))).toEqual(['computing feature statistics over 200 training rows… 100%']);
  });
});
