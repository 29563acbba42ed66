/**
 * Turns `settings.tls` into a working interceptor: loads the CA, makes the certificate store,
 * and offers the public CA certificate at /.leeway/ca.pem on the proxy port.
 */
import { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { LeewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Settings } from '../policy/types.js';
import type { InnerHandlers, InterceptTarget, Interceptor } from '../proxy/interceptor.js';
import type { LocalRoute } from '../proxy/local-routes.js';
import { loadCa, type LoadedCa } from './ca.js';
import { CertificateStore } from './certificate-store.js';
import { createTlsInterceptor, type HandshakeFailureReason, type TlsInterceptor } from './interceptor.js';

export const CA_PEM_PATH = '/.leeway/ca.pem';
/** DER with the MIME type browsers and OSes offer to install. */
export const CA_CRT_PATH = '/.leeway/ca.crt';

export interface Interception {
  readonly ca: LoadedCa;
  readonly store: CertificateStore;
  readonly interceptor: TlsInterceptor;
}

export interface InterceptionOptions {
  readonly logger: Logger;
  readonly onHandshakeFailure?: (host: string, reason: HandshakeFailureReason) => void;
  readonly clock?: () => number;
  readonly onMint?: () => void;
}

/** Undefined when no CA is configured: CONNECTs needing a page are then refused by the proxy. */
export async function setupInterception(settings: Settings, options: InterceptionOptions): Promise<Interception | undefined> {
  const { caCert, caKey, certCacheSize } = settings.tls;
  if (caCert === undefined && caKey === undefined) return undefined;
  if (caCert === undefined || caKey === undefined) {
    throw new LeewayError('LEEWAY_ERR_CONFIG', 'settings.tls needs both caCert and caKey for interception');
  }
  const ca = await loadCa(caCert, caKey);
  for (const warning of ca.warnings) options.logger.warn({ path: caCert }, warning);
  const store = new CertificateStore({ ca, cacheSize: certCacheSize, clock: options.clock, onMint: options.onMint });
  const interceptor = createTlsInterceptor({ store, logger: options.logger, onHandshakeFailure: options.onHandshakeFailure });
  options.logger.info({ ca: ca.subjectName, fingerprint256: ca.fingerprint256, notAfter: ca.notAfter.toISOString(), cacheSize: certCacheSize }, 'TLS interception ready');
  return { ca, store, interceptor };
}

/**
 * An Interceptor whose implementation is set after createLeeway() has loaded the policy (the CA
 * paths live in the policy). Until set, it is unavailable and the proxy tunnels or refuses.
 */
export function deferredInterceptor(): Interceptor & { set(interceptor: Interceptor | undefined): void } {
  let current: Interceptor | undefined;
  return {
    get available() {
      return current?.available ?? false;
    },
    prepare(host: string): void {
      current?.prepare?.(host);
    },
    intercept(client: Duplex, head: Buffer, target: InterceptTarget, inner: InnerHandlers): void {
      if (current === undefined) return void client.destroy();
      current.intercept(client, head, target, inner);
    },
    set(interceptor) {
      current = interceptor;
    },
  };
}

/** Serves the CA certificate, PEM or DER, so people can install it from the proxy itself. */
export function caCertificateRoute(certPem: string, format: 'pem' | 'der'): LocalRoute {
  const body = format === 'pem' ? Buffer.from(certPem, 'utf8') : new X509Certificate(certPem).raw;
  const type = format === 'pem' ? 'application/x-pem-file' : 'application/x-x509-ca-cert';
  return (req, res) => {
    res.writeHead(200, {
      'content-type': type,
      'content-length': String(body.length),
      'content-disposition': `attachment; filename="leeway-ca.${format === 'pem' ? 'pem' : 'crt'}"`,
      'cache-control': 'max-age=3600',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** Registers both CA routes on a Leeway instance. */
export function registerCaRoutes(leeway: { registerLocalRoute(path: string, route: LocalRoute): void }, certPem: string): void {
  leeway.registerLocalRoute(CA_PEM_PATH, caCertificateRoute(certPem, 'pem'));
  leeway.registerLocalRoute(CA_CRT_PATH, caCertificateRoute(certPem, 'der'));
}
