import { isIP } from 'node:net';
import { LeewayError } from '../errors.js';

/**
 * IPv4 and IPv6 networks as 128-bit integers. IPv4 is held in the IPv4-mapped IPv6 range
 * (::ffff:0:0/96) so that a dual-stack socket's `::ffff:127.0.0.1` matches `127.0.0.0/8`.
 */
export interface Network {
  readonly text: string;
  readonly base: bigint;
  /** Prefix length in the 128-bit space. */
  readonly prefix: number;
}

const V4_MAPPED = 0xffffn << 32n;
const ALL_ONES = (1n << 128n) - 1n;

/** Parse an IP literal (v4, v6, v4-mapped v6, optional zone id, optional brackets) to 128 bits; undefined when not an IP. */
export function ipToBigInt(address: string): bigint | undefined {
  let text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const family = isIP(text);
  if (family === 4) return V4_MAPPED | v4ToBigInt(text);
  if (family !== 6) return undefined;
  return v6ToBigInt(text);
}

function v4ToBigInt(text: string): bigint {
  let value = 0n;
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function v6ToBigInt(text: string): bigint {
  // An embedded dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  let groupsText = text;
  let tail: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = v4ToBigInt(text.slice(lastColon + 1));
    groupsText = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head = '', rest] = groupsText.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...restGroups];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(parseInt(group, 16));
  if (tail !== undefined) value = (value & ~0xffffffffn) | tail;
  return value;
}

/** Parse `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). Throws LEEWAY_ERR_CIDR. */
export function parseNetwork(text: string): Network {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(addressText);
  if (family === 0) throw new LeewayError('LEEWAY_ERR_CIDR', `invalid network "${text}": "${addressText}" is not an IP address`, { network: text });
  const maxPrefix = family === 4 ? 32 : 128;
  let prefix = maxPrefix;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      throw new LeewayError('LEEWAY_ERR_CIDR', `invalid network "${text}": prefix length must be 0-${maxPrefix}`, { network: text });
    }
    prefix = Number(prefixText);
  }
  const fullPrefix = family === 4 ? prefix + 96 : prefix;
  const mask = fullPrefix === 0 ? 0n : (ALL_ONES << BigInt(128 - fullPrefix)) & ALL_ONES;
  const address = ipToBigInt(addressText) as bigint;
  return Object.freeze({ text, base: address & mask, prefix: fullPrefix });
}

export function networkContains(network: Network, address: bigint): boolean {
  if (network.prefix === 0) return true;
  return address >> BigInt(128 - network.prefix) === network.base >> BigInt(128 - network.prefix);
}

/** A set of networks with longest-prefix lookup. Small sets (client ACLs, groups): a sorted scan is enough. */
export class NetworkSet<T = true> {
  private readonly entries: readonly { readonly network: Network; readonly value: T }[];

  constructor(entries: Iterable<readonly [string, T]>) {
    const parsed = [...entries].map(([text, value]) => ({ network: parseNetwork(text), value }));
    // Most specific first, so the first hit is the longest-prefix match.
    parsed.sort((a, b) => b.network.prefix - a.network.prefix);
    this.entries = Object.freeze(parsed);
  }

  static of(networks: Iterable<string>): NetworkSet<true> {
    return new NetworkSet([...networks].map((text) => [text, true] as const));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The value of the most specific network containing `address`; undefined when none or not an IP. */
  lookup(address: string): T | undefined {
    const value = ipToBigInt(address);
    if (value === undefined) return undefined;
    for (const entry of this.entries) if (networkContains(entry.network, value)) return entry.value;
    return undefined;
  }

  has(address: string): boolean {
    return this.lookup(address) !== undefined;
  }
}
