/**
 * `leeway ca init [--out certs/] [--name NAME] [--force] [--days N]`: creates the interception
 * root CA and says how to deploy it (the same steps as docs/ca-deployment.md).
 */
import { isLeewayError } from '../errors.js';
import { DEFAULT_CA_DAYS, DEFAULT_CA_NAME, caFromPem, generateCa, writeCa } from '../tls/ca.js';
import { UsageError, parseCommandArgs } from './args.js';

const USAGE = 'Usage: leeway ca init [--out certs/] [--name NAME] [--force] [--days N]';

export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommandArgs(args, {
      out: { type: 'string' },
      name: { type: 'string' },
      force: { type: 'boolean' },
      days: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help === true) {
      console.log(USAGE);
      return 0;
    }
    if (positionals[0] !== 'init' || positionals.length > 1) throw new UsageError(`expected the sub-command "init"`);
    const days = values.days === undefined ? DEFAULT_CA_DAYS : Number(values.days);
    const out = values.out ?? 'certs';
    const name = values.name ?? DEFAULT_CA_NAME;
    const generated = generateCa({ name, days });
    const { certPath, keyPath } = await writeCa(out, generated, { force: values.force === true });
    const ca = caFromPem(generated.certPem, generated.keyPem);
    console.log(deploymentText({ certPath, keyPath, name, subject: ca.subjectName, fingerprint: ca.fingerprint256, notAfter: ca.notAfter }));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`leeway ca: ${error.message}\n${USAGE}`);
      return 2;
    }
    if (isLeewayError(error)) {
      console.error(`leeway ca: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

export function deploymentText(o: { certPath: string; keyPath: string; name: string; subject: string; fingerprint: string; notAfter: Date }): string {
  return `Created the interception CA "${o.subject}"
  certificate (public, deploy it):  ${o.certPath}
  private key (mode 0600, keep it): ${o.keyPath}
  SHA-256 fingerprint: ${o.fingerprint}
  valid until: ${o.notAfter.toISOString()}

Point the proxy at them in a policy file:
  settings:
    tls: { caCert: ${o.certPath}, caKey: ${o.keyPath} }

Deploy the certificate (never the key) to every browser that uses the proxy; browsers can also
download it from the proxy at http://<proxy>:3128/.leeway/ca.pem.
  Windows (domain):  Group Policy > Computer Configuration > Policies > Windows Settings >
                     Security Settings > Public Key Policies > Trusted Root Certification Authorities > Import
                     (one machine: certutil -addstore -f Root ca.pem)
  macOS:             sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.pem
                     (or a configuration profile with a certificate payload, via MDM)
  Firefox:           trust the OS store: security.enterprise_roots.enabled = true, or the enterprise
                     policy "Certificates": { "ImportEnterpriseRoots": true } (or "Install": ["ca.pem"])
  Linux, NSS (Chromium, Firefox per user):
                     certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "${o.name.replace(/"/g, '')}" -i ca.pem
  Debian/Ubuntu (system, curl, most CLI tools):
                     sudo cp ca.pem /usr/local/share/ca-certificates/leeway-ca.crt && sudo update-ca-certificates

Sites in do-not-inspect categories (finance and health by default) are never intercepted.
See docs/ca-deployment.md.`;
}
