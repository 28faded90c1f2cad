// The host part of the URLs the coordinator prints (the workers' URL, the dashboard link): the
// address it listens on, except that a wildcard (0.0.0.0, ::) is no address to connect to, so
// it is replaced by one that other hosts can reach (issue #14 item 3).

import { hostname, type NetworkInterfaceInfo, networkInterfaces } from 'node:os';

/**
 * The host to print for a server asked to listen on `host`, which bound `bindAddress`: `host` as
 * given (a name the user chose stays that name) unless the address is a wildcard; for a wildcard, the first non-internal IPv4 address of this machine, else its first
 * non-internal IPv6 address that is not link-local (a link-local one needs a zone to be used),
 * else the host name, else 127.0.0.1. An address rather than the host name: an address needs no
 * name resolution, and a host name often does not resolve elsewhere (a laptop's name on a LAN
 * without mDNS, a container's random name outside its network). IPv6 comes in brackets.
 */
export function reachableHost(
  host: string,
  bindAddress: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
  hostName: string = hostname(),
): string {
  if (!isWildcard(bindAddress)) return bracketed(host);
  const addresses = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((info) => !info.internal);
  const v4 = addresses.find((info) => info.family === 'IPv4');
  if (v4 !== undefined) return v4.address;
  const v6 = addresses.find((info) => info.family === 'IPv6' && !/^fe[89ab]/i.test(info.address));
  if (v6 !== undefined) return bracketed(v6.address);
  return hostName === '' ? '127.0.0.1' : hostName;
}

/** Whether an address is "every interface" (an unspecified address), in its usual spellings. */
function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '[::]' || address === '::0' || address === '0:0:0:0:0:0:0:0';
}

function bracketed(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}
