/**
 * Answers written straight to a socket, for CONNECT and Upgrade requests, which Node hands over
 * without a ServerResponse. Always `Connection: close`: after such an answer the socket is done.
 */
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';

export function writeRawResponse(socket: Duplex, status: number, headers: Readonly<Record<string, string>> = {}, body = ''): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  head += `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body);
  // A client that never reads must not keep the socket alive.
  setTimeout(() => socket.destroy(), 5_000).unref();
}
