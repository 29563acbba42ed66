/**
 * Plain HTTP through the proxy as one person: an absolute-form request on a fresh connection
 * from a chosen loopback address (127.0.0.0/8 is all local on Linux, so each address stands
 * for one client network), and the Continue token read back from a page.
 */
import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly body: string;
}

export function viaProxy(proxyPort: number, from: string, method: string, url: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: proxyPort,
        localAddress: from,
        method,
        path: url,
        agent: false,
        headers: {
          host: new URL(url).host,
          ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) }),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The signed Continue token in a coach or suggest page. */
export function tokenIn(html: string): string {
  const match = /name="token" value="([^"]+)"/.exec(html);
  if (match?.[1] === undefined) throw new Error(`no token in page: ${html.slice(0, 200)}`);
  return match[1];
}
