/** The library entry offers what an embedder needs for interception (docs/embedding.md). */
import { describe, expect, it } from 'vitest';
import * as leeway from '../../src/index.js';

describe('library exports for TLS interception', () => {
  it.each(['setupInterception', 'deferredInterceptor', 'registerCaRoutes', 'createTlsInterceptor', 'CertificateStore', 'loadCa', 'generateCa', 'writeCa'] as const)('%s is a function', (name) => {
    expect(typeof leeway[name]).toBe('function');
  });

  it('the parts fit together without a policy: a generated CA, a store, an interceptor', async () => {
    const { caFromPem } = await import('../../src/tls/ca.js');
    const generated = leeway.generateCa({ name: 'Embedding Test CA' });
    const store = new leeway.CertificateStore({ ca: caFromPem(generated.certPem, generated.keyPem), cacheSize: 2 });
    const interceptor = leeway.createTlsInterceptor({ store, logger: leeway.silentLogger() });
    expect(interceptor.available).toBe(true);
    expect(await store.certificatePemFor('embedded.test')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const deferred = leeway.deferredInterceptor();
    expect(deferred.available).toBe(false);
    deferred.set(interceptor);
    expect(deferred.available).toBe(true);
    expect(leeway.CA_PEM_PATH).toBe('/.leeway/ca.pem');
  });
});
