// The error classes of dpt. Each carries a stable DPT_ code whose meaning never changes,
// and the exit code the CLI maps it to (DESIGN.md: 1 training failure, 2 bad usage or input).

export type ErrorCode =
  | 'DPT_CONFIG' // a flag or option is missing, malformed or out of range
  | 'DPT_DATASET' // a data file cannot be read or a row is invalid (names file, line, column)
  | 'DPT_MODEL_FILE' // a model file is missing, malformed or of another format
  | 'DPT_CHECKPOINT' // a checkpoint is missing, corrupt (checksum) or of another run
  | 'DPT_PROTOCOL' // a peer sent a message that fails validation (names peer, kind, field)
  | 'DPT_AUTH' // a peer failed the handshake (token or protocol version)
  | 'DPT_NO_WORKERS' // not enough workers joined, or none came back in time
  | 'DPT_DIVERGED' // an update would make the model non-finite
  | 'DPT_WRITE' // an output file could not be written in full; the previous file is kept
  | 'DPT_COORDINATOR_LOST'; // a worker lost its coordinator and could not reconnect

export class DptError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: 1 | 2;
  constructor(code: ErrorCode, exitCode: 1 | 2, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.exitCode = exitCode;
    this.name = new.target.name;
  }
}

export class ConfigError extends DptError {
  constructor(message: string, options?: ErrorOptions) {
    super('DPT_CONFIG', 2, message, options);
  }
}

/** Longest problem text a DatasetError keeps, in characters: it may quote cells of a file, which can hold anything. */
const MAX_PROBLEM_CHARS = 1000;

/**
 * `text` as one bounded, printable line: control characters (line breaks included) escaped as
 * \uXXXX, and cut to fit MAX_PROBLEM_CHARS. Applying it twice changes nothing (a message is
 * rebuilt from another's text when its line is shifted). Issue #14 item 5: a binary file read as
 * CSV put kilobytes of raw bytes in one error.
 */
function printableProblem(text: string): string {
  let escaped = '';
  for (const character of text) {
    const code = character.charCodeAt(0);
    const isControl = code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
    escaped += isControl ? `\\u${code.toString(16).padStart(4, '0')}` : character;
  }
  if (escaped.length <= MAX_PROBLEM_CHARS) return escaped;
  const kept = MAX_PROBLEM_CHARS - 60;
  return `${escaped.slice(0, kept)}… (cut at ${kept} of ${escaped.length} characters)`;
}

/** A bad data file; `line` is 1-based as an editor shows it, `column` 1-based too. The problem is made one printable line of bounded length. */
export class DatasetError extends DptError {
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(file: string, line: number | undefined, column: number | undefined, problem: string) {
    const where = [file, line === undefined ? '' : `line ${line}`, column === undefined ? '' : `column ${column}`].filter((part) => part !== '').join(', ');
    super('DPT_DATASET', 2, `${where}: ${printableProblem(problem)}`);
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/**
 * A .dpt content block that fails its check when first read: its CRC-32, a feature that is not
 * finite, or a label that is not 0 or 1. `block` is its index in the file's CRC table, the same on
 * every copy with the same identity, so a coordinator can check its own copy of that block.
 */
export class DataBlockError extends DatasetError {
  readonly block: number;
  constructor(file: string, block: number, problem: string) {
    super(file, undefined, undefined, problem);
    this.block = block;
  }
}

export class ModelFileError extends DptError {
  constructor(message: string, options?: ErrorOptions) {
    super('DPT_MODEL_FILE', 2, message, options);
  }
}

/** A message that fails validation; `field` names what was wrong. */
export class CheckpointError extends DptError {
  constructor(message: string, options?: ErrorOptions) {
    super('DPT_CHECKPOINT', 2, message, options);
  }
}

export class ProtocolError extends DptError {
  readonly field: string;
  /**
   * Whether the message was well formed but carried a non-finite value: what an honest worker
   * computing from bad data or a broken kernel sends, as opposed to a malformed or hostile message.
   */
  readonly isNonFinite: boolean;
  constructor(kind: string, field: string, problem: string, isNonFinite = false) {
    super('DPT_PROTOCOL', 1, `message '${kind}', field '${field}': ${problem}`);
    this.field = field;
    this.isNonFinite = isNonFinite;
  }
}

export class AuthError extends DptError {
  constructor(message: string) {
    super('DPT_AUTH', 1, message);
  }
}

export class NoWorkersError extends DptError {
  constructor(message: string) {
    super('DPT_NO_WORKERS', 1, message);
  }
}

export class DivergedError extends DptError {
  constructor(message: string) {
    super('DPT_DIVERGED', 1, message);
  }
}

/** An output file (model, checkpoint, data, predictions) could not be written; the previous one is unchanged. */
export class WriteError extends DptError {
  constructor(message: string, options?: ErrorOptions) {
    super('DPT_WRITE', 1, message, options);
  }
}

export class CoordinatorLostError extends DptError {
  constructor(message: string, options?: ErrorOptions) {
    super('DPT_COORDINATOR_LOST', 1, message, options);
  }
}
