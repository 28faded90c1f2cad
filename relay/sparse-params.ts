// A relay's copy of a sparse run's parameters (issue #13): a replica (shared/sparse-replica.ts) fed
// by the coordinator's params messages, in their order among the jobs, and read by the relay's
// SparseBroadcast (coordinator/sparse-broadcast.ts) to serve its group: nothing, the coordinator's
// last delta, or the whole vector, per connection, as the coordinator serves its direct workers.
// The relay never computes with these parameters; it only passes them on, bit for bit.
//
// Exports: RelayParams.

import type { ParamsSource } from '../coordinator/sparse-broadcast.js';
import type { ParamsMessage } from '../shared/protocol.js';
import { NO_VERSION, SparseReplica } from '../shared/sparse-replica.js';

export class RelayParams implements ParamsSource {
  private readonly replica: SparseReplica;
  private changed: Uint32Array | null = null;

  /** Zero parameters of O×D weights and O biases, at no version until the first params message. */
  constructor(D: number, O: number) {
    this.replica = new SparseReplica({ v: new Float64Array(O * D), scale: 1, bias: new Float64Array(O) }, D, O);
  }

  get v(): Float64Array {
    return this.replica.params.v;
  }

  get bias(): Float64Array {
    return this.replica.params.bias;
  }

  get scale(): number {
    return this.replica.params.scale;
  }

  get version(): number {
    return this.replica.version;
  }

  /**
   * The coordinates of the last delta applied (version − 1 → version), or null after a full vector
   * (a reset, possibly in several messages): the group then gets the vector in full too.
   */
  /** A replica holds the values the coordinator sent, owed penalties already paid. */
  currentV(i: number): number {
    return this.v[i]!;
  }

  get lastChanged(): Uint32Array | null {
    return this.changed;
  }

  /** Applies a params message; a delta for another base than the version held is a ProtocolError and changes nothing. */
  apply(message: ParamsMessage): void {
    const isDelta = message.base !== NO_VERSION && message.base === message.version - 1;
    this.replica.apply(message);
    // A full vector's later messages (base = version) keep it a full one.
    if (message.base === NO_VERSION) this.changed = null;
    else if (isDelta) this.changed = message.indices;
  }

  /** Throws a ProtocolError unless the replica holds `version` (a job names the parameters it needs). */
  require(kind: string, version: number | undefined): void {
    this.replica.require(kind, version);
  }
}
