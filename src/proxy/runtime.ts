/**
 * Everything the request path needs from one policy, computed once when the policy loads
 * (client ACL, egress sets, CONNECT ports, htpasswd, trusted header networks, upstream trust),
 * so the hot path only looks things up. A reload builds a new Runtime and swaps it atomically.
 */
import type { SecureContext } from 'node:tls';
import { NetworkSet } from '../net/cidr.js';
import { Htpasswd } from '../identity/htpasswd.js';
import { LeewayError } from '../errors.js';
import type { CompiledPolicy } from '../policy/types.js';
import { upstreamSecureContext } from '../tls/upstream.js';

export interface Runtime {
  readonly policy: CompiledPolicy;
  readonly clients: NetworkSet;
  readonly connectPorts: ReadonlySet<number>;
  readonly egressAllow: NetworkSet | undefined;
  readonly egressDeny: NetworkSet;
  /** Lower-cased host → address. */
  readonly hosts: ReadonlyMap<string, string>;
  readonly htpasswd: Htpasswd | undefined;
  readonly authRequired: boolean;
  readonly realm: string;
  /** Lower-cased header name and the networks allowed to send it. */
  readonly trustedHeader: { readonly name: string; readonly from: NetworkSet } | undefined;
  /** Trust for HTTPS origins: system roots plus settings.tls.extraCaBundle (undefined: Node's defaults). */
  readonly upstreamSecureContext: SecureContext | undefined;
  readonly interceptionEnabled: boolean;
}

export async function buildRuntime(policy: CompiledPolicy): Promise<Runtime> {
  const proxy = policy.settings.proxy;
  const clients = NetworkSet.of(proxy.clients.length > 0 ? proxy.clients : ['127.0.0.0/8', '::1/128']);
  const hosts = new Map<string, string>();
  for (const [name, address] of Object.entries(proxy.hosts)) hosts.set(name.toLowerCase().replace(/\.$/, ''), address);
  let htpasswd: Htpasswd | undefined;
  if (proxy.auth.htpasswd !== undefined) htpasswd = await Htpasswd.load(proxy.auth.htpasswd);
  if (proxy.auth.required && htpasswd === undefined) {
    throw new LeewayError('LEEWAY_ERR_CONFIG', 'settings.proxy.auth.required needs settings.proxy.auth.htpasswd');
  }
  const upstreamTrust = await upstreamSecureContext(policy.settings.tls.extraCaBundle);
  return Object.freeze({
    policy,
    clients,
    connectPorts: new Set(proxy.connectPorts.length > 0 ? proxy.connectPorts : [443]),
    egressAllow: proxy.egress.allow.length > 0 ? NetworkSet.of(proxy.egress.allow) : undefined,
    egressDeny: NetworkSet.of(proxy.egress.deny),
    hosts,
    htpasswd,
    authRequired: proxy.auth.required,
    realm: proxy.auth.realm,
    trustedHeader: proxy.trustedHeader === undefined ? undefined : { name: proxy.trustedHeader.name.toLowerCase(), from: NetworkSet.of(proxy.trustedHeader.from) },
    upstreamSecureContext: upstreamTrust,
    interceptionEnabled: policy.settings.interception.enabled,
  });
}
