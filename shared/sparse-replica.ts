// A worker's replica of a sparse run's parameters (issue #13): w = scale·v, bias, and the version
// the coordinator gave them, updated by params messages (a full vector after a reset, or the
// coordinates one step changed). It never computes with parameters the coordinator did not send:
// a delta for another base fails loudly. Not the kernel (it reads `params`) nor the protocol.
//
// Exports: SparseReplica, NO_VERSION.

import { ProtocolError } from './errors.js';
import type { ParamsMessage } from './protocol.js';
import type { SparseParams } from './sparse-rows.js';

/** The version of a replica that has received nothing yet. */
export const NO_VERSION = -1;

export class SparseReplica {
  /** The parameters the kernel reads (allocated by it: the wasm kernel reads v by address). */
  readonly params: SparseParams;
  private readonly D: number;
  private readonly O: number;
  private at = NO_VERSION;

  /** `params` holds v (O×D), scale and bias; its values are overwritten by the first params message. */
  constructor(params: SparseParams, D: number, O: number) {
    if (params.v.length !== O * D || params.bias.length !== O) throw new Error(`invariant broken: replica of ${params.v.length} for ${O}×${D}`);
    this.params = params;
    this.D = D;
    this.O = O;
  }

  /** The version of the parameters held, NO_VERSION before the first params message. */
  get version(): number {
    return this.at;
  }

  /**
   * Applies a params message (checked at the boundary: indices increasing and below D, values
   * finite, scale positive). Base −1 zeroes v first (O(D), only on a full vector); another base
   * must equal the version held, else a ProtocolError and the replica is unchanged.
   * Cost O(listed coordinates · O) otherwise.
   */
  apply(message: ParamsMessage): void {
    const { D, O, params } = this;
    if (message.base !== NO_VERSION && message.base !== this.at) {
      throw new ProtocolError(
        'params',
        'base',
        `a delta from version ${message.base}, but this worker holds version ${this.at}: never computing on other parameters`,
      );
    }
    if (message.base === NO_VERSION) params.v.fill(0);
    const { indices, values } = message;
    for (let k = 0; k < indices.length; k++) {
      const j = indices[k]!;
      for (let o = 0; o < O; o++) params.v[o * D + j] = values[k * O + o]!;
    }
    params.scale = message.scale;
    params.bias.set(message.bias);
    this.at = message.version;
  }

  /** Throws a ProtocolError unless the replica holds `version` (a step or pass names the parameters it needs). */
  require(kind: string, version: number | undefined): void {
    if (version === undefined || version !== this.at) {
      throw new ProtocolError(kind, 'version', `computed with parameters of version ${version}, but this worker holds version ${this.at}`);
    }
  }
}
