// When the coordinator may run without a token: only on a loopback address, decided from the
// resolved address (issue 10, item 5), and the constant-time token check itself.

import { describe, expect, it } from 'vitest';
import { createTokenCheck, isLoopbackAddress, resolveListenAddress } from '../../coordinator/auth.js';

describe('isLoopbackAddress', () => {
  it('accepts 127.0.0.0/8 and ::1 in any spelling, also IPv4-mapped', () => {
    for (const address of ['127.0.0.1', '127.255.1.2', '127.0.0.0', '::1', '0:0:0:0:0:0:0:1', '0::0:1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
      expect(isLoopbackAddress(address), address).toBe(true);
    }
  });

  it('refuses every other address, the wildcard addresses among them', () => {
    for (const address of ['10.77.0.1', '128.0.0.1', '126.255.255.255', '0.0.0.0', '::', '::2', '::ffff:10.0.0.1', 'fe80::1']) {
      expect(isLoopbackAddress(address), address).toBe(false);
    }
  });

  it('refuses host names, however they start: a name is not an address', () => {
    for (const host of ['127.lan', '127.0.0.1.example', 'localhost', '127.0.0.1 ', '']) expect(isLoopbackAddress(host), host).toBe(false);
  });
});

describe('resolveListenAddress', () => {
  it('keeps an IP address as it is and resolves localhost to a loopback address', async () => {
    expect(await resolveListenAddress('10.77.0.1')).toBe('10.77.0.1');
    expect(isLoopbackAddress(await resolveListenAddress('localhost'))).toBe(true);
  });

  it('names --host when the name does not resolve', async () => {
    // .invalid never resolves (RFC 6761).
    await expect(resolveListenAddress('127.lan.invalid')).rejects.toMatchObject({
      code: 'DPT_CONFIG',
      message: expect.stringMatching(/^--host 127\.lan\.invalid does not resolve/),
    });
  });
});

describe('createTokenCheck', () => {
  it('accepts exactly the token, and anything when none is configured', () => {
    const check = createTokenCheck('secret');
    expect(check('secret')).toBe(true);
    expect(check('secre')).toBe(false);
    expect(check('')).toBe(false);
    expect(createTokenCheck(null)('anything')).toBe(true);
  });
});
