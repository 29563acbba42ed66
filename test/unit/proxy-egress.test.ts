/** Egress (issue 3 item 9): hosts map first, then DNS (cached), allow/deny lists, the proxy's own listeners. */
import { describe, expect, it } from 'vitest';
import { Egress } from '../../src/proxy/egress.js';
import type { Destination } from '../../src/proxy/egress.js';
import type { Runtime } from '../../src/proxy/runtime.js';
import { NetworkSet } from '../../src/net/cidr.js';
import { LeewayError } from '../../src/errors.js';

function runtime(o: { allow?: string[]; deny?: string[]; hosts?: Record<string, string> }): Runtime {
  // Only the egress fields matter here; the rest of Runtime is not read by Egress.
  return {
    egressAllow: o.allow === undefined ? undefined : NetworkSet.of(o.allow),
    egressDeny: NetworkSet.of(o.deny ?? []),
    hosts: new Map(Object.entries(o.hosts ?? {})),
  } as unknown as Runtime;
}

async function settle(value: Destination | LeewayError | Promise<Destination | LeewayError>): Promise<Destination | LeewayError> {
  return value;
}

function codeOf(result: Destination | LeewayError): string {
  return result instanceof LeewayError ? result.code : `ok ${result.address}`;
}

describe('Egress.resolve', () => {
  const lookups: string[] = [];
  const dns = async (host: string) => {
    lookups.push(host);
    if (host === 'public.example') return { address: '93.184.216.34', family: 4 };
    if (host === 'intranet.example') return { address: '10.1.2.3', family: 4 };
    // Would resolve if asked: proves `.invalid` names never reach DNS (RFC 6761 §6.4).
    if (host === 'trap.invalid') return { address: '127.0.0.9', family: 4 };
    throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
  };
  const egress = new Egress(dns);
  egress.setListeners([{ address: '127.0.0.1', port: 3128 }]);

  const cases: { name: string; rt: Runtime; host: string; port: number; expected: string }[] = [
    { name: 'IP literal allowed', rt: runtime({}), host: '127.0.0.2', port: 80, expected: 'ok 127.0.0.2' },
    { name: 'hosts map wins over DNS', rt: runtime({ hosts: { 'public.example': '127.0.0.1' } }), host: 'Public.Example.', port: 80, expected: 'ok 127.0.0.1' },
    { name: 'DNS answer inside allow', rt: runtime({ allow: ['93.184.0.0/16'] }), host: 'public.example', port: 80, expected: 'ok 93.184.216.34' },
    { name: 'DNS answer outside allow', rt: runtime({ allow: ['127.0.0.0/8'] }), host: 'public.example', port: 80, expected: 'LEEWAY_ERR_EGRESS_FORBIDDEN' },
    { name: 'deny wins over allow', rt: runtime({ allow: ['0.0.0.0/0'], deny: ['10.0.0.0/8'] }), host: 'intranet.example', port: 80, expected: 'LEEWAY_ERR_EGRESS_FORBIDDEN' },
    { name: 'unknown host', rt: runtime({}), host: 'missing.example', port: 80, expected: 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND' },
    { name: '.invalid never asks DNS (RFC 6761)', rt: runtime({}), host: 'Trap.Invalid.', port: 80, expected: 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND' },
    { name: 'the proxy itself is a loop', rt: runtime({}), host: '127.0.0.1', port: 3128, expected: 'LEEWAY_ERR_LOOP' },
    { name: 'same address, other port is fine', rt: runtime({}), host: '127.0.0.1', port: 3129, expected: 'ok 127.0.0.1' },
    { name: 'IPv4-mapped form of the listener is a loop too', rt: runtime({}), host: '[::ffff:127.0.0.1]', port: 3128, expected: 'LEEWAY_ERR_LOOP' },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      expect(codeOf(await settle(egress.resolve(c.rt, c.host, c.port)))).toBe(c.expected);
    });
  }

  it('keeps allowed literal and mapped destinations per policy, until the listeners change', async () => {
    const own = new Egress(dns);
    own.setListeners([{ address: '127.0.0.1', port: 3128 }]);
    const rt = runtime({ hosts: { 'mapped.example': '127.0.0.1' } });
    const first = own.resolve(rt, 'mapped.example', 3130);
    expect(codeOf(first as Destination)).toBe('ok 127.0.0.1');
    expect(own.resolve(rt, 'mapped.example', 3130)).toBe(first);
    // Another policy decides afresh (its hosts map and egress lists may differ).
    expect(codeOf(await settle(own.resolve(runtime({}), 'mapped.example', 3130)))).toBe('LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND');
    // A listener moved onto that port: the kept answer would now be a loop.
    own.setListeners([{ address: '127.0.0.1', port: 3130 }]);
    expect(codeOf(own.resolve(rt, 'mapped.example', 3130) as Destination)).toBe('LEEWAY_ERR_LOOP');
    expect(codeOf(own.resolve(rt, '127.0.0.1', 3130) as Destination)).toBe('LEEWAY_ERR_LOOP');
  });

  it('answers literals and mapped hosts synchronously, and caches DNS', async () => {
    expect(egress.resolve(runtime({}), '127.0.0.3', 80)).not.toBeInstanceOf(Promise);
    lookups.length = 0;
    await settle(egress.resolve(runtime({}), 'public.example', 80));
    const second = egress.resolve(runtime({}), 'public.example', 80);
    expect(second).not.toBeInstanceOf(Promise);
    expect(lookups).toEqual([]);
  });

  it('a listener on 0.0.0.0 makes every loopback address a loop on its port', async () => {
    const wildcard = new Egress(dns);
    wildcard.setListeners([{ address: '0.0.0.0', port: 8080 }]);
    expect(codeOf(await settle(wildcard.resolve(runtime({}), '127.0.0.5', 8080)))).toBe('LEEWAY_ERR_LOOP');
  });
});
