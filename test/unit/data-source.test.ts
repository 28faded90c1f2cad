import { describe, expect, it } from 'vitest';
import { DatasetError } from '../../shared/errors.js';
import type { WelcomeMessage } from '../../shared/protocol.js';
import { isDataUrl, resolveDataSource } from '../../worker/data-source.js';

const MISSING = '/nonexistent-dpt-folder/train.dpt';

function welcome(fields: Partial<WelcomeMessage>): WelcomeMessage {
  return {
    kind: 'welcome',
    protocol: 1,
    workerId: 3,
    dataPath: MISSING,
    dataUrl: '/data',
    labelColumn: null,
    rows: 10,
    features: 2,
    sha256: 'a'.repeat(64),
    schedule: { rows: 10, valFraction: 0, seed: 1, shuffle: true, shuffleBlockRows: 0, batchSize: 4, chunksPerBatch: 1 },
    kernel: 'ts',
    reduction: 'r',
    standardization: null,
    model: 'logistic',
    classes: 2,
    classWeights: null,
    ...fields,
  };
}

const CONNECTION = { url: 'ws://coordinator:8787', token: 'secret', ca: null, dataPath: null };

describe('resolveDataSource (where a worker reads its rows)', () => {
  it('reads a local --data path as it is, and an http(s) --data URL without the token (it may be any server)', () => {
    expect(resolveDataSource(welcome({}), { ...CONNECTION, dataPath: '/local/copy.dpt' })).toEqual({ kind: 'local', path: '/local/copy.dpt' });
    const source = resolveDataSource(welcome({}), { ...CONNECTION, dataPath: 'https://files.example/train.dpt' });
    expect(source.kind).toBe('remote');
    if (source.kind === 'remote') {
      expect(source.source.url.href).toBe('https://files.example/train.dpt');
      expect(source.source.token).toBeNull();
    }
  });

  it("reads the announced path when this host has it (this test's own file)", () => {
    const path = new URL(import.meta.url).pathname;
    expect(resolveDataSource(welcome({ dataPath: path }), CONNECTION)).toEqual({ kind: 'local', path });
  });

  it("falls back to the coordinator's /data over the connection's host, port and TLS, with its token", () => {
    const plain = resolveDataSource(welcome({}), CONNECTION);
    expect(plain.kind === 'remote' && plain.source.url.href).toBe('http://coordinator:8787/data');
    expect(plain.kind === 'remote' && plain.source.token).toBe('secret');
    expect(plain.kind === 'remote' && plain.reason).toMatch(/train\.dpt is not on this host/);
    const ca = Buffer.from('PEM');
    const tls = resolveDataSource(welcome({}), { ...CONNECTION, url: 'wss://coordinator:8443', ca });
    expect(tls.kind === 'remote' && tls.source.url.href).toBe('https://coordinator:8443/data');
    expect(tls.kind === 'remote' && tls.source.ca).toBe(ca);
  });

  it('sends the token only to the coordinator, not to a data URL on another origin', () => {
    const elsewhere = resolveDataSource(welcome({ dataUrl: 'http://mirror:9000/train.dpt' }), CONNECTION);
    expect(elsewhere.kind === 'remote' && elsewhere.source.url.href).toBe('http://mirror:9000/train.dpt');
    expect(elsewhere.kind === 'remote' && elsewhere.source.token).toBeNull();
  });

  it('reaches the coordinator over its Unix socket when the worker connected by ws+unix', () => {
    const local = resolveDataSource(welcome({}), { ...CONNECTION, url: 'ws+unix:///run/dpt.sock:/' });
    expect(local.kind === 'remote' && local.source.socketPath).toBe('/run/dpt.sock');
    expect(local.kind === 'remote' && local.source.url.pathname).toBe('/data');
  });

  it('says what to do when the file is not on this host and the coordinator does not serve it', () => {
    let error: unknown;
    try {
      resolveDataSource(welcome({ dataUrl: null }), CONNECTION);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).code).toBe('DPT_DATASET');
    expect((error as DatasetError).message).toMatch(
      /^\/nonexistent-dpt-folder\/train\.dpt: not found on this host \(cannot read the file \(ENOENT\).*\): give --data with a local copy, or let the worker read from the coordinator \(it does when the coordinator serves \/data; this one does not\)$/,
    );
  });

  it('tells URLs from paths', () => {
    expect(isDataUrl('http://h/x.dpt')).toBe(true);
    expect(isDataUrl('HTTPS://h/x.dpt')).toBe(true);
    expect(isDataUrl('./http/x.dpt')).toBe(false);
    expect(isDataUrl('/data/x.dpt')).toBe(false);
  });
});
