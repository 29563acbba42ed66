/**
 * Stage 1, accept (issue 3 item 6; PRODUCT.md "not an open proxy"): only clients from
 * settings.proxy.clients are served. Checked once per connection and remembered, since every
 * request on a connection comes from the same address.
 */
import type { Socket } from 'node:net';
import type { Runtime } from './runtime.js';

const accepted = new WeakMap<Socket, Runtime>();

export function acceptClient(runtime: Runtime, socket: Socket): boolean {
  if (accepted.get(socket) === runtime) return true;
  const ok = runtime.clients.has(socket.remoteAddress ?? '');
  if (ok) accepted.set(socket, runtime);
  return ok;
}
