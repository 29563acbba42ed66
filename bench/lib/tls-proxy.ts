/**
 * The two servers bench/tls.ts measures through, each in its own process so that the proxy's
 * upstream TLS handshake can overlap the client's, as it does when clients and origins are other
 * machines. Started by the bench with an IPC channel; each prints `{"port": n}` on stdout when
 * listening on 127.0.0.1 and leaves when the channel closes.
 *  - `origin <file.json>`: an HTTPS origin answering `ok`, one certificate per host (all minted
 *    before listening) from `{ certPem, keyPem, hosts }`, the origin CA in that file.
 *  - `proxy <policies> <dist|src>`: Leeway with TLS interception. Over IPC it answers
 *    `{ premint: string[] }` (mints those hosts' certificates without any connection, so the bench
 *    can time a new host whose certificate is ready) and `{ stats: true }` (mints, cache size).
 */
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as LeewayModule from '../../src/index.js';
import type * as InterceptionModule from '../../src/tls/interception.js';
import { caFromPem } from '../../src/tls/ca.js';
import { generateLeafKey, mintLeafCertificate } from '../../src/tls/leaf-certificate.js';

const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');
if (process.send === undefined) throw new Error('usage: started by bench/tls.ts with an IPC channel');
const send = process.send.bind(process);

async function originRole(file: string): Promise<void> {
  const { certPem, keyPem, hosts } = JSON.parse(await readFile(file, 'utf8')) as { certPem: string; keyPem: string; hosts: string[] };
  const ca = caFromPem(certPem, keyPem);
  const key = generateLeafKey('ec');
  const contexts = new Map<string, SecureContext>();
  for (const host of hosts) contexts.set(host, createSecureContext({ key: key.privateKeyPem, cert: mintLeafCertificate({ host, ca, leafKey: key, now: Date.now() }).certPem }));
  const origin = https.createServer(
    { SNICallback: (name, cb) => (contexts.has(name) ? cb(null, contexts.get(name)) : cb(new Error(`no certificate for ${name}`))), keepAliveTimeout: 10_000 },
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    },
  );
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  process.once('disconnect', () => {
    origin.closeAllConnections();
    origin.close(() => process.exit(0));
  });
  console.log(JSON.stringify({ port: (origin.address() as AddressInfo).port }));
}

async function proxyRole(policies: string, from: 'dist' | 'src'): Promise<void> {
  const suffix = from === 'dist' ? 'js' : 'ts';

  const { createLeeway, silentLogger } = (await import(pathToFileURL(join(repoRoot, from, `index.${suffix}`)).href)) as typeof LeewayModule;
  const { deferredInterceptor, setupInterception } = (await import(pathToFileURL(join(repoRoot, from, 'tls', `interception.${suffix}`)).href)) as typeof InterceptionModule;

  const interceptor = deferredInterceptor();
  const leeway = await createLeeway({ policies, listen: '127.0.0.1:0', admin: false, interceptor });
  const tls = await setupInterception(leeway.policy.settings, { logger: silentLogger() });
  if (tls === undefined) throw new Error('interception not configured');
  interceptor.set(tls.interceptor);
  const { proxy } = await leeway.listen();

  process.on('message', (message: { premint?: string[]; stats?: boolean }) => {
    void (async () => {
      if (message.premint !== undefined) {
        for (const host of message.premint) await tls.store.secureContextFor(host);
        send({ preminted: message.premint.length });
      } else if (message.stats === true) {
        send({ minted: tls.store.minted, size: tls.store.size });
      }
    })();
  });
  // The bench closes the channel when done (or dies): leave with it.
  process.once('disconnect', () => {
    void leeway.close(500).finally(() => process.exit(0));
  });
  console.log(JSON.stringify({ port: proxy.port }));
}

if (process.argv[2] === 'origin') await originRole(process.argv[3] ?? '');
else await proxyRole(process.argv[3] ?? '', process.argv[4] === 'dist' ? 'dist' : 'src');
