/**
 * The proxy auto-config file served at /proxy.pac (issue 3 item 8). Intranet traffic goes
 * DIRECT, everything else through Leeway. Generated from settings.proxy.pacBypass:
 * - a name without a dot (`intranet`) or any plain host name the browser sends → DIRECT;
 * - `.corp.example` or `*.corp.example` → that domain and every name under it;
 * - `wiki.corp.example` → that host only;
 * - a CIDR (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`) → hosts written as an address in it. Only
 *   address literals are tested, so the browser never waits on a DNS lookup to choose a route.
 */
import { isIP } from 'node:net';
import { LeewayError } from '../errors.js';
import { parseNetwork } from '../net/cidr.js';

export interface PacOptions {
  /** host:port of the proxy as browsers reach it, e.g. `proxy.corp.example:3128`. */
  readonly proxy: string;
  readonly bypass: readonly string[];
}

const HOSTNAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
// RFC 1918 and loopback: always DIRECT, whatever the bypass list says, as IT expects of a PAC file.
const ALWAYS_DIRECT = ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '::1/128'];

export function renderPac(o: PacOptions): string {
  const proxy = checkProxy(o.proxy);
  const exact: string[] = [];
  const suffixes: string[] = [];
  const v4: [string, string][] = [];
  const v6: string[] = [];
  for (const raw of [...ALWAYS_DIRECT, ...o.bypass]) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry.includes('/') || isIP(entry) !== 0) {
      const net = parseNetwork(entry);
      const [address = '', prefixText] = entry.split('/');
      if (isIP(address) === 4) {
        const prefix = prefixText === undefined ? 32 : Number(prefixText);
        v4.push([maskedV4(address, prefix), v4Mask(prefix)]);
      } else {
        v6.push(net.text.includes('/') ? net.text : `${net.text}/128`);
      }
      continue;
    }
    const suffix = entry.startsWith('*.') ? entry.slice(2) : entry.startsWith('.') ? entry.slice(1) : undefined;
    const name = suffix ?? entry;
    if (!HOSTNAME.test(name)) throw new LeewayError('LEEWAY_ERR_CONFIG', `invalid PAC bypass entry "${raw}"`, { entry: raw });
    if (suffix !== undefined) suffixes.push(`.${suffix}`);
    else exact.push(name);
  }
  const js = (v: unknown): string => JSON.stringify(v);
  return `// Leeway proxy auto-config, generated from settings.proxy.pacBypass.
var PROXY = ${js(`PROXY ${proxy}`)};
var EXACT = ${js(exact)};
var SUFFIXES = ${js(suffixes)};
var NETS4 = ${js(v4)};
var NETS6 = ${js(v6)};
function FindProxyForURL(url, host) {
  host = String(host).toLowerCase();
  if (host.charAt(host.length - 1) === ".") host = host.substring(0, host.length - 1);
  if (host.charAt(0) === "[") host = host.substring(1, host.length - 1);
  if (isPlainHostName(host)) return "DIRECT";
  var i;
  for (i = 0; i < EXACT.length; i++) if (host === EXACT[i]) return "DIRECT";
  for (i = 0; i < SUFFIXES.length; i++) {
    var s = SUFFIXES[i];
    if (host === s.substring(1) || (host.length > s.length && host.substring(host.length - s.length) === s)) return "DIRECT";
  }
  if (/^\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}$/.test(host)) {
    for (i = 0; i < NETS4.length; i++) if (isInNet(host, NETS4[i][0], NETS4[i][1])) return "DIRECT";
  } else if (host.indexOf(":") >= 0 && typeof isInNetEx === "function") {
    for (i = 0; i < NETS6.length; i++) if (isInNetEx(host, NETS6[i])) return "DIRECT";
  }
  return PROXY;
}
`;
}

function checkProxy(proxy: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(proxy.trim());
  const port = Number(m?.[2]);
  if (m === null || !(port > 0 && port < 65536)) throw new LeewayError('LEEWAY_ERR_CONFIG', `PAC proxy must be host:port, got "${proxy}"`, { proxy });
  return proxy.trim();
}

function v4Mask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}

function maskedV4(address: string, prefix: number): string {
  const mask = v4Mask(prefix).split('.').map(Number);
  return address
    .split('.')
    .map((part, i) => Number(part) & (mask[i] ?? 0))
    .join('.');
}
