// The parameters of a sparse run on their way to the workers' replicas (issue #13): before a step
// or a pass is sent to a worker, it gets what its replica lacks for the model's version — nothing,
// the delta of the last step (the coordinates it changed, with the new scale and bias), or the
// whole vector (a worker joining or reconnecting, one that missed a step, or after a renormalised
// scale). A connection's messages arrive in order, so what was sent is what its replica holds.
// Each form is encoded once per version and the same bytes go to every worker that needs it.
//
// The source is the coordinator's SparseModel, or a relay's replica of it (relay/sparse-params.ts),
// which serves its group the same way.
//
// Exports: SparseBroadcast, ParamsSource, ParamsPeer, FULL_PARAMS_CHUNK.

import { encodeMessage, type ParamsMessage } from '../shared/protocol.js';

/** Coordinates per message of a full vector: ~12 MB each (index and value), well under a worker's message limit. */
export const FULL_PARAMS_CHUNK = 1 << 20;

/** What the broadcast reads of the parameters (SparseModel, or a relay's replica): w = scale·v. */
export interface ParamsSource {
  /** v, O×D row-major. */
  readonly v: Float64Array;
  readonly bias: Float64Array;
  readonly scale: number;
  /** The version of the parameters held. */
  readonly version: number;
  /** The coordinates version − 1 → version changed, ascending, or null when unknown or all (send in full). */
  readonly lastChanged: Uint32Array | null;
  /** v[i] as the workers must see it: with any L1 penalty it still owes paid (sgd with --l1); v[i] otherwise. */
  currentV(i: number): number;
}

/** What the broadcast needs of a connection (WorkerConnection). */
export interface ParamsPeer {
  paramsVersion: number;
  stepBytes: number;
  sendBytes(bytes: Buffer): void;
}

export class SparseBroadcast {
  private readonly model: ParamsSource;
  private readonly D: number;
  private readonly O: number;
  private deltaFor = -1;
  private delta: Buffer | null = null;
  private fullFor = -1;
  private full: Buffer[] = [];

  constructor(model: ParamsSource, D: number, O: number) {
    this.model = model;
    this.D = D;
    this.O = O;
  }

  /** Sends each peer what its replica lacks for the model's current version (in order, before the job's message). */
  sync(peers: Iterable<ParamsPeer>): void {
    const version = this.model.version;
    for (const peer of peers) {
      if (peer.paramsVersion === version) continue;
      const delta = peer.paramsVersion === version - 1 ? this.deltaBytes() : null;
      for (const bytes of delta === null ? this.fullBytes() : [delta]) {
        peer.stepBytes += bytes.length;
        peer.sendBytes(bytes);
      }
      peer.paramsVersion = version;
    }
  }

  /** The last step's delta (base version − 1), or null when that step changed every coordinate (a renormalisation) or none was taken. */
  private deltaBytes(): Buffer | null {
    const { model, D, O } = this;
    if (this.deltaFor === model.version) return this.delta;
    const changed = model.lastChanged;
    this.deltaFor = model.version;
    this.delta = null;
    if (changed === null || model.version === 0) return null;
    // The coordinates a step changed owe no L1 penalty (sparse-model.ts catches them up): v is their current value.
    const values = new Float64Array(changed.length * O);
    for (let k = 0; k < changed.length; k++) {
      for (let o = 0; o < O; o++) values[k * O + o] = model.v[o * D + changed[k]!]!;
    }
    this.delta = encodeMessage(this.message(model.version - 1, changed, values));
    return this.delta;
  }

  /** The whole vector as its non-zero coordinates, in messages of at most FULL_PARAMS_CHUNK coordinates: the first resets the replica. */
  private fullBytes(): Buffer[] {
    const { model, D, O } = this;
    if (this.fullFor === model.version) return this.full;
    // currentV: v with any L1 penalty a coordinate still owes applied (sgd with --l1, sparse-model.ts); v itself otherwise.
    const nonZero: number[] = [];
    for (let j = 0; j < D; j++) {
      for (let o = 0; o < O; o++) {
        if (model.currentV(o * D + j) !== 0) {
          nonZero.push(j);
          break;
        }
      }
    }
    const messages: Buffer[] = [];
    for (let first = 0; first === 0 || first < nonZero.length; first += FULL_PARAMS_CHUNK) {
      const indices = Uint32Array.from(nonZero.slice(first, first + FULL_PARAMS_CHUNK));
      const values = new Float64Array(indices.length * O);
      for (let k = 0; k < indices.length; k++) {
        for (let o = 0; o < O; o++) values[k * O + o] = model.currentV(o * D + indices[k]!);
      }
      // The first message resets the replica to zeros; the next ones add coordinates at the same version.
      messages.push(encodeMessage(this.message(first === 0 ? -1 : model.version, indices, values)));
    }
    this.fullFor = model.version;
    this.full = messages;
    return messages;
  }

  private message(base: number, indices: Uint32Array, values: Float64Array): ParamsMessage {
    const { model } = this;
    return { kind: 'params', base, version: model.version, scale: model.scale, bias: Float64Array.from(model.bias), indices, values };
  }
}
