/**
 * Trust toward origins (issue 4 item 4): the system roots plus an optional extra bundle
 * (settings.tls.extraCaBundle), as one SecureContext that the proxy's https Agent shares. An
 * origin whose certificate fails is answered with an error page naming the problem
 * (`upstreamError` in ../proxy/upstream-errors.ts), never passed silently.
 */
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { LeewayError } from '../errors.js';

/** Reads and checks a PEM bundle; every certificate in it must parse, so a typo fails at load, not per request. */
export async function loadExtraCaBundle(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new LeewayError('LEEWAY_ERR_CONFIG', `settings.tls.extraCaBundle ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`, { path }, { cause: error });
  }
  const certificates = splitPemBundle(text);
  if (certificates.length === 0) throw new LeewayError('LEEWAY_ERR_CONFIG', `settings.tls.extraCaBundle ${path}: no PEM certificate found`, { path });
  certificates.forEach((pem, index) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', `settings.tls.extraCaBundle ${path}: certificate #${index + 1} does not parse`, { path }, { cause: error });
    }
  });
  return text;
}

export function splitPemBundle(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** System roots plus the extra bundle: passing `ca` replaces Node's defaults, so both are listed. */
export function upstreamTrust(extraCaBundle?: string): string[] {
  return extraCaBundle === undefined ? [...rootCertificates] : [...rootCertificates, ...splitPemBundle(extraCaBundle)];
}

/**
 * The SecureContext origins are verified against, or undefined for Node's defaults (no extra
 * bundle). One context shared by the https Agent: passing `ca` per request would make the
 * agent's pool key a 200 KB string.
 */
export async function upstreamSecureContext(extraCaBundlePath: string | undefined): Promise<SecureContext | undefined> {
  if (extraCaBundlePath === undefined) return undefined;
  return createSecureContext({ ca: upstreamTrust(await loadExtraCaBundle(extraCaBundlePath)) });
}
