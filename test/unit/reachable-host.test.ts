import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { reachableHost } from '../../coordinator/reachable-host.js';

function info(address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo {
  const common = { address, netmask: family === 'IPv4' ? '255.255.255.0' : 'ffff:ffff:ffff:ffff::', mac: '00:00:00:00:00:00', internal, cidr: null };
  return family === 'IPv4' ? { ...common, family } : { ...common, family, scopeid: 0 };
}

const LOOPBACK_ONLY = { lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)] };
const LAN = { ...LOOPBACK_ONLY, eth0: [info('fe80::1', 'IPv6', false), info('2001:db8::5', 'IPv6', false), info('192.0.2.7', 'IPv4', false)] };

describe('reachableHost', () => {
  it('prints the host as given when it is not a wildcard (a name stays a name, IPv6 in brackets)', () => {
    expect(reachableHost('127.0.0.1', '127.0.0.1', LAN, 'box')).toBe('127.0.0.1');
    expect(reachableHost('localhost', '127.0.0.1', LAN, 'box')).toBe('localhost');
    expect(reachableHost('::1', '::1', LAN, 'box')).toBe('[::1]');
    expect(reachableHost('192.0.2.7', '192.0.2.7', LAN, 'box')).toBe('192.0.2.7');
  });

  it('replaces a wildcard by the first non-internal IPv4 address', () => {
    expect(reachableHost('0.0.0.0', '0.0.0.0', LAN, 'box')).toBe('192.0.2.7');
    expect(reachableHost('::', '::', LAN, 'box')).toBe('192.0.2.7');
    // A name that resolves to the wildcard is no address to connect to either.
    expect(reachableHost('any.lan', '0.0.0.0', LAN, 'box')).toBe('192.0.2.7');
  });

  it('falls back to a global IPv6 address (never link-local), then the host name, then loopback', () => {
    const v6only = { ...LOOPBACK_ONLY, eth0: [info('fe80::1', 'IPv6', false), info('2001:db8::5', 'IPv6', false)] };
    expect(reachableHost('0.0.0.0', '0.0.0.0', v6only, 'box')).toBe('[2001:db8::5]');
    const linkLocalOnly = { ...LOOPBACK_ONLY, eth0: [info('fe80::1', 'IPv6', false)] };
    expect(reachableHost('0.0.0.0', '0.0.0.0', linkLocalOnly, 'box')).toBe('box');
    expect(reachableHost('0.0.0.0', '0.0.0.0', LOOPBACK_ONLY, '')).toBe('127.0.0.1');
  });
});
