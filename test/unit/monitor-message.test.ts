// The monitor's decoder of loss-stream messages: accepts what the coordinator sends, names the
// kind and field of anything malformed, ignores kinds it does not know.

import { describe, expect, it } from 'vitest';
import { decodeMonitorMessage } from '../../shared/monitor-message.js';

const STEP = { type: 'step', step: 3, epoch: 0, loss: 0.5, rows: 8, workers: 2, stepMs: 0.4, rowsPerSec: 20000, time: 1 };

describe('decodeMonitorMessage', () => {
  it('returns a well-formed step event as it is', () => {
    expect(decodeMonitorMessage(JSON.stringify(STEP))).toEqual(STEP);
  });

  it('turns a non-finite loss (null in JSON) into NaN', () => {
    const decoded = decodeMonitorMessage(JSON.stringify({ ...STEP, loss: Number.NaN }));
    expect(decoded?.type === 'step' && Number.isNaN(decoded.loss)).toBe(true);
  });

  it('ignores a kind it does not know', () => {
    expect(decodeMonitorMessage('{"type":"future-kind","x":1}')).toBeNull();
  });

  it.each([
    ['not JSON', 'nope', /field 'json'/],
    ['no type', '{"step":1}', /field 'type'/],
    ['a step without its loss', JSON.stringify({ ...STEP, loss: undefined }), /message 'step', field 'loss'/],
    ['a step number that is not finite', JSON.stringify({ ...STEP, step: '3' }), /message 'step', field 'step'/],
    ['a run event of no known kind', '{"type":"run","event":"pause","time":1}', /message 'run', field 'event'/],
    [
      'a run start with a bad setting',
      JSON.stringify({ type: 'run', event: 'start', totalSteps: 1, firstStep: 0, epochs: 1, stepsPerEpoch: 1, config: { data: 'd' }, time: 1 }),
      /field 'config\.rows'/,
    ],
    ['a workers snapshot with a bad entry', '{"type":"workers","workers":[{"workerId":1}],"time":1}', /field 'workers\[0\]\.address'/],
    ['a dropped notice without a count', '{"type":"dropped","time":1}', /message 'dropped', field 'count'/],
  ])('rejects %s, naming the field', (_what, text, error) => {
    expect(() => decodeMonitorMessage(text)).toThrow(error);
  });
});
