/**
 * The WebSocket action (issue 3 item 5): the Upgrade request is sent to the origin on its own
 * connection; on 101 the origin's handshake answer is relayed and both sockets are piped like a
 * tunnel. An origin that declines the upgrade has its answer passed back as is.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LeewayError } from '../errors.js';
import { forwardHeaders } from './headers.js';
import { hostHeader } from './forward.js';
import type { ForwardTarget } from './forward.js';
import { relay } from './tunnel.js';
import type { TunnelResult } from './tunnel.js';
import { upstreamError } from './upstream-errors.js';

export interface WebSocketOptions {
  /** The pool agent for the scheme; Node takes an upgraded socket out of the pool. */
  readonly agent: http.Agent;
  readonly upstreamMs: number;
  readonly idleMs: number;
  readonly dropHeader: string | undefined;
  readonly onBytes?: ((direction: 'client-to-origin' | 'origin-to-client', bytes: number) => void) | undefined;
}

export function proxyWebSocket(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: ForwardTarget,
  options: WebSocketOptions,
  failed: (error: LeewayError) => void,
  closed: (result: TunnelResult & { status: number }) => void,
): void {
  const headers = forwardHeaders(req.rawHeaders, { keepTransferEncoding: false, keepUpgrade: true, drop: options.dropHeader, host: hostHeader(target) });
  const secure = target.scheme === 'https';
  const requestOptions: https.RequestOptions = {
    host: target.destination.address,
    family: target.destination.family,
    port: target.port,
    method: req.method,
    path: target.path,
    headers: headers as unknown as http.OutgoingHttpHeaders, // flat raw array, accepted by node:http
    agent: options.agent,
    setHost: false,
  };
  if (secure && isIP(target.host) === 0) requestOptions.servername = target.host;
  const upstream = secure ? https.request(requestOptions) : http.request(requestOptions);
  const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })), options.upstreamMs);
  const onClientClose = (): void => {
    upstream.destroy();
  };
  client.once('close', onClientClose);
  client.on('error', () => undefined);

  upstream.on('upgrade', (answer: IncomingMessage, originSocket: Socket, originHead: Buffer) => {
    clearTimeout(timer);
    client.off('close', onClientClose);
    const answerHeaders = forwardHeaders(answer.rawHeaders, { keepTransferEncoding: false, keepUpgrade: true });
    let text = `HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}\r\n`;
    for (let i = 0; i < answerHeaders.length; i += 2) text += `${answerHeaders[i]}: ${answerHeaders[i + 1]}\r\n`;
    client.write(`${text}\r\n`);
    if (originHead.length > 0) client.write(originHead);
    relay(client, originSocket, { idleMs: options.idleMs, connectMs: options.upstreamMs, onBytes: options.onBytes }, (result) => closed({ ...result, status: 101 }));
    if (head.length > 0) originSocket.write(head);
  });

  upstream.on('response', (answer) => {
    // The origin declined the upgrade: pass its answer back, then close.
    clearTimeout(timer);
    const answerHeaders = forwardHeaders(answer.rawHeaders, { keepTransferEncoding: false });
    let text = `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\n`;
    for (let i = 0; i < answerHeaders.length; i += 2) text += `${answerHeaders[i]}: ${answerHeaders[i + 1]}\r\n`;
    client.write(`${text}Connection: close\r\n\r\n`);
    answer.pipe(client);
    answer.on('end', () => closed({ error: undefined, bytesIn: 0, bytesOut: 0, status: answer.statusCode ?? 502 }));
  });

  upstream.on('error', (error) => {
    clearTimeout(timer);
    client.off('close', onClientClose);
    failed(upstreamError(error, target.host));
  });
  upstream.end();
}
