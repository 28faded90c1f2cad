// Checks one message of the loss stream as a monitor receives it (JSON text): every field of its
// kind present with the right type, numbers finite where they must be. One check per kind, in
// a table typed so that a kind without a check fails to compile.

import { ProtocolError } from './errors.js';
import type { MonitorMessage } from './events.js';

type FieldType = 'number' | 'finite' | 'string' | 'boolean' | 'number|null' | 'string|null' | 'object' | 'array';
type Fields = Readonly<Record<string, FieldType>>;

const STEP: Fields = {
  step: 'finite',
  epoch: 'finite',
  loss: 'number',
  rows: 'finite',
  workers: 'finite',
  stepMs: 'number',
  rowsPerSec: 'number',
  time: 'finite',
};
const EVAL: Fields = { epoch: 'finite', trainLoss: 'number', trainAccuracy: 'number', valLoss: 'number|null', valAccuracy: 'number|null', time: 'finite' };
const WORKER: Fields = { event: 'string', workerId: 'finite', address: 'string', reason: 'string', workers: 'finite', time: 'finite' };
const RUN_START: Fields = { totalSteps: 'finite', firstStep: 'finite', epochs: 'finite', stepsPerEpoch: 'finite', config: 'object', time: 'finite' };
const RUN_END: Fields = { outcome: 'string', steps: 'finite', reason: 'string|null', time: 'finite' };
const SETTINGS: Fields = {
  data: 'string',
  rows: 'finite',
  features: 'finite',
  trainRows: 'finite',
  valRows: 'finite',
  batchSize: 'finite',
  lr: 'finite',
  l2: 'finite',
  seed: 'finite',
  shuffle: 'boolean',
  standardize: 'boolean',
  valFraction: 'finite',
  chunksPerBatch: 'finite',
  optimizer: 'object',
  workers: 'finite',
};
const WORKER_SUMMARY: Fields = {
  workerId: 'finite',
  address: 'string',
  connected: 'boolean',
  rows: 'finite',
  rowsPerSec: 'finite',
  share: 'finite',
  latencyMs: 'finite',
  straggler: 'boolean',
  lastSeen: 'number|null',
  failures: 'finite',
};

/** Each kind's check: the name of the first bad field, or null. */
const CHECKS: { readonly [K in MonitorMessage['type']]: (message: Record<string, unknown>) => string | null } = {
  step: (m) => badField(m, STEP),
  eval: (m) => badField(m, EVAL),
  worker: (m) => badField(m, WORKER),
  run: (m) => {
    if (m.event === 'start') return badField(m, RUN_START) ?? badField(m.config as Record<string, unknown>, SETTINGS, 'config.'); // config checked as an object above
    if (m.event === 'end') return badField(m, RUN_END);
    return 'event';
  },
  workers: (m) => {
    const bad = badField(m, { workers: 'array', time: 'finite' });
    if (bad !== null) return bad;
    const list = m.workers as unknown[]; // checked as an array above
    for (let i = 0; i < list.length; i++) {
      const item = list[i];
      if (!isRecord(item)) return `workers[${i}]`;
      const inner = badField(item, WORKER_SUMMARY, `workers[${i}].`);
      if (inner !== null) return inner;
    }
    return null;
  },
  history: (m) => badField(m, { events: 'finite', stepStride: 'finite', stepsSeen: 'finite', time: 'finite' }),
  dropped: (m) => badField(m, { count: 'finite', time: 'finite' }),
};

/**
 * The checked message (a non-finite loss, null in JSON, comes back as NaN), or null for a kind this version does not know (a newer coordinator may
 * add kinds). Throws a ProtocolError naming the kind and field for anything malformed.
 */
export function decodeMonitorMessage(text: string): MonitorMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('?', 'json', 'the monitor message is not JSON');
  }
  if (!isRecord(value) || typeof value.type !== 'string') throw new ProtocolError('?', 'type', 'the monitor message has no type');
  if (!Object.hasOwn(CHECKS, value.type)) return null;
  const kind = value.type as MonitorMessage['type']; // a key of CHECKS, tested above
  const bad = CHECKS[kind](value);
  if (bad !== null) throw new ProtocolError(kind, bad, 'missing or of the wrong type');
  return value as unknown as MonitorMessage; // every field of its kind checked above
}

/** The first field of `fields` missing or of the wrong type; a null where a number belongs becomes NaN. */
function badField(message: Record<string, unknown>, fields: Fields, prefix = ''): string | null {
  for (const [name, type] of Object.entries(fields)) {
    if (!hasType(message[name], type)) return `${prefix}${name}`;
    if (type === 'number' && message[name] === null) message[name] = Number.NaN;
  }
  return null;
}

function hasType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'number':
      // A loss may be NaN or infinite in a diverging run; JSON carries it as null.
      return typeof value === 'number' || value === null;
    case 'finite':
      return typeof value === 'number' && Number.isFinite(value);
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'number|null':
      return value === null || typeof value === 'number';
    case 'string|null':
      return value === null || typeof value === 'string';
    case 'object':
      return isRecord(value);
    case 'array':
      return Array.isArray(value);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
