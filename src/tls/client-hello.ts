/**
 * Reads the server name (SNI, RFC 6066 §3) from the first bytes a client sends after CONNECT:
 * the TLS ClientHello (RFC 8446 §4.1.2), so interception can be decided on the name the client
 * really asks for when it differs from the CONNECT host (issue 4 item 3). Every length is checked
 * against the bytes at hand; nothing here trusts the peer.
 */
import type { Duplex } from 'node:stream';

const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXTENSION_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;
/** A ClientHello larger than this (handshake body) is not read: the CONNECT host decides. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

export type ClientHelloResult =
  /** More bytes are needed to reach the end of the ClientHello. */
  | { readonly kind: 'incomplete' }
  /** Not a TLS ClientHello, malformed, or too large: decide on the CONNECT host. */
  | { readonly kind: 'not-client-hello' }
  /** `serverName` is lower-case without a trailing dot; undefined when the client sent none (IP hosts). */
  | { readonly kind: 'client-hello'; readonly serverName: string | undefined };

const INCOMPLETE: ClientHelloResult = { kind: 'incomplete' };
const NOT_CLIENT_HELLO: ClientHelloResult = { kind: 'not-client-hello' };

/** Parse the ClientHello at the start of `data`, reassembling it across TLS records. */
export function parseClientHello(data: Uint8Array): ClientHelloResult {
  // Gather the handshake bytes carried by consecutive handshake records.
  const fragments: Uint8Array[] = [];
  let gathered = 0;
  let needed = -1;
  let offset = 0;
  while (needed === -1 || gathered < needed) {
    if (data.length < offset + RECORD_HEADER) return data.length === 0 || offset > 0 || data[0] === CONTENT_HANDSHAKE ? INCOMPLETE : NOT_CLIENT_HELLO;
    if (data[offset] !== CONTENT_HANDSHAKE || data[offset + 1] !== 0x03) return NOT_CLIENT_HELLO;
    const length = readUint16(data, offset + 3);
    // RFC 8446 §5.1: a record carries at most 2^14 bytes; a zero-length handshake record is illegal.
    if (length === 0 || length > 16_384) return NOT_CLIENT_HELLO;
    if (data.length < offset + RECORD_HEADER + length) return INCOMPLETE;
    fragments.push(data.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length));
    gathered += length;
    offset += RECORD_HEADER + length;
    if (needed === -1) {
      const first = fragments[0] as Uint8Array;
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_CLIENT_HELLO;
      if (first.length < 4) return NOT_CLIENT_HELLO;
      const bodyLength = ((first[1] as number) << 16) | ((first[2] as number) << 8) | (first[3] as number);
      if (bodyLength > MAX_CLIENT_HELLO_BYTES) return NOT_CLIENT_HELLO;
      needed = 4 + bodyLength;
    }
  }
  const message = fragments.length === 1 ? (fragments[0] as Uint8Array) : Buffer.concat(fragments);
  return readServerName(message.subarray(4, needed));
}

/** The server_name extension of a ClientHello body (after the 4-byte handshake header). */
function readServerName(body: Uint8Array): ClientHelloResult {
  const reader = new Reader(body);
  // legacy_version (2), random (32), legacy_session_id <0..32>, cipher_suites <2..2^16-2>, legacy_compression_methods <1..2^8-1>
  if (!reader.skip(34) || !reader.skipVector(1) || !reader.skipVector(2) || !reader.skipVector(1)) return NOT_CLIENT_HELLO;
  // A ClientHello without extensions (TLS 1.0-era) carries no name.
  if (reader.remaining === 0) return { kind: 'client-hello', serverName: undefined };
  const extensions = reader.vector(2);
  if (extensions === undefined || reader.remaining !== 0) return NOT_CLIENT_HELLO;
  const list = new Reader(extensions);
  while (list.remaining > 0) {
    const type = list.uint16();
    const content = list.vector(2);
    if (type === undefined || content === undefined) return NOT_CLIENT_HELLO;
    if (type !== EXTENSION_SERVER_NAME) continue;
    const names = new Reader(content);
    const nameList = names.vector(2);
    if (nameList === undefined || names.remaining !== 0) return NOT_CLIENT_HELLO;
    const entries = new Reader(nameList);
    while (entries.remaining > 0) {
      const nameType = entries.uint8();
      const name = entries.vector(2);
      if (nameType === undefined || name === undefined) return NOT_CLIENT_HELLO;
      // RFC 6066 §3: at most one name of each type; host_name is the only type defined.
      if (nameType === NAME_TYPE_HOST) return hostNameResult(name);
    }
    return { kind: 'client-hello', serverName: undefined };
  }
  return { kind: 'client-hello', serverName: undefined };
}

function hostNameResult(name: Uint8Array): ClientHelloResult {
  // RFC 6066 §3: ASCII host name without a trailing dot, and not an IP literal; be lenient on the dot.
  if (name.length === 0 || name.length > 255) return NOT_CLIENT_HELLO;
  for (const byte of name) {
    const ok = (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === 0x2e || byte === 0x5f;
    if (!ok) return NOT_CLIENT_HELLO;
  }
  const text = Buffer.from(name.buffer, name.byteOffset, name.length).toString('latin1').toLowerCase();
  const serverName = text.endsWith('.') ? text.slice(0, -1) : text;
  return serverName.length === 0 ? NOT_CLIENT_HELLO : { kind: 'client-hello', serverName };
}

function readUint16(data: Uint8Array, at: number): number {
  return ((data[at] as number) << 8) | (data[at + 1] as number);
}

/** A cursor that answers undefined (never throws, never reads past the end) on short input. */
class Reader {
  #at = 0;
  constructor(private readonly data: Uint8Array) {}

  get remaining(): number {
    return this.data.length - this.#at;
  }

  skip(count: number): boolean {
    if (this.remaining < count) return false;
    this.#at += count;
    return true;
  }

  uint8(): number | undefined {
    if (this.remaining < 1) return undefined;
    return this.data[this.#at++];
  }

  uint16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const value = readUint16(this.data, this.#at);
    this.#at += 2;
    return value;
  }

  /** A vector with a `lengthBytes`-byte length prefix (1 or 2). */
  vector(lengthBytes: 1 | 2): Uint8Array | undefined {
    const length = lengthBytes === 1 ? this.uint8() : this.uint16();
    if (length === undefined || this.remaining < length) return undefined;
    const slice = this.data.subarray(this.#at, this.#at + length);
    this.#at += length;
    return slice;
  }

  skipVector(lengthBytes: 1 | 2): boolean {
    return this.vector(lengthBytes) !== undefined;
  }
}

export interface PeekOptions {
  /** Stop waiting for the ClientHello after this many ms (a client that speaks second, or stalls). */
  readonly timeoutMs: number;
}

export interface PeekResult {
  /** The server name to decide on; undefined when the client sent none, or no ClientHello came. */
  readonly serverName: string | undefined;
  /** Every byte read from the client so far (head included), to replay untouched. */
  readonly bytes: Buffer;
}

/**
 * Read the client's first bytes (after `head`) until the ClientHello is complete, or it is not
 * one, or `timeoutMs` passed, or the returned function is called (the origin spoke first, so no
 * ClientHello is coming); `done` gets undefined when the client went away first. The socket is
 * left paused with no data listener, so whoever takes it over reads on from where this stopped.
 */
export function peekClientHello(socket: Duplex, head: Buffer, options: PeekOptions, done: (result: PeekResult | undefined) => void): () => void {
  let bytes = head;
  let finished = false;
  const finish = (serverName: string | undefined): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.pause();
    done({ serverName, bytes });
  };
  const examine = (): boolean => {
    const result = parseClientHello(bytes);
    if (result.kind === 'incomplete') return false;
    finish(result.kind === 'client-hello' ? result.serverName : undefined);
    return true;
  };
  const onData = (chunk: Buffer): void => {
    bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
    examine();
  };
  const onClose = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    done(undefined);
  };
  const stop = (): void => finish(undefined);
  const timer = setTimeout(stop, options.timeoutMs);
  if (bytes.length > 0 && examine()) return stop;
  socket.on('data', onData);
  socket.once('close', onClose);
  return stop;
}
