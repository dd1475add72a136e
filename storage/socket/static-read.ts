// Reading a socket into memory of our choosing instead of a new Buffer per read. Why: every
// chunk Node hands to a 'data' listener is a fresh ArrayBuffer (64 KiB reads on a plain socket,
// 16 KiB records on TLS), and V8 counts those bytes as external memory: streaming a guest's
// writes at a few hundred MB/s crossed V8's external-memory limit several times a second, and
// each crossing started a full mark-compact of the daemon's heap (about 40 % of a brick node's
// CPU on the storage bench). Here reads land in one buffer per socket, or, in the middle of a
// large payload, straight in the payload's own memory (ReadSink.directTarget), so a 1 MiB write
// is neither allocated nor copied on its way in.
//
// Node offers this only as the `onread` option of a socket it creates (net.Socket, tls.connect),
// not for sockets a server accepts, which is where a brick and an NBD server receive. The
// accepted socket's stream handle (TCP, pipe or TLS) has the same switch, useUserBuffer(), and
// the JS side needs only the three private fields `onread` sets, whose symbols we learn from
// probe sockets made with `onread`. When they cannot be found (another Node, a stream that is
// not a socket) the stream's 'data' events feed the same sink: same bytes, same order.
import net from "node:net";
import type { Duplex } from "node:stream";

export interface ReadSink {
  /** Where the next read may land in place (say the rest of a payload), or null (or empty) for the socket's buffer. */
  directTarget(): Buffer | null;
  /** n bytes were read into the start of the buffer directTarget() last returned. */
  directFilled(n: number): void;
  /** Bytes read into the socket's buffer (or a 'data' chunk), valid only during the call: copy what you keep. */
  bytes(b: Buffer): void;
}

interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): unknown;
}

interface OnreadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

let symbols: OnreadSymbols | null | undefined;

/** The own symbol whose value on a socket made with `onread` is `value`. */
function symbolHolding(onread: { buffer: unknown; callback: unknown }, value: unknown): symbol | undefined {
  // @types/node 20 does not declare the constructor's `onread` (Node has it since 12).
  const probe = new net.Socket({ onread } as net.SocketConstructorOpts);
  const own = probe as unknown as Record<symbol, unknown>;
  const found = Object.getOwnPropertySymbols(probe).find((s) => own[s] === value);
  probe.destroy();
  return found;
}

/** The private fields of a socket made with `onread`; null when this Node has none. */
function onreadSymbols(): OnreadSymbols | null {
  if (symbols !== undefined) return symbols;
  const buf = Buffer.alloc(1);
  const callback = (): boolean => true;
  const generator = (): Buffer => buf;
  const b = symbolHolding({ buffer: buf, callback }, buf);
  const c = symbolHolding({ buffer: buf, callback }, callback);
  const g = symbolHolding({ buffer: generator, callback }, generator);
  symbols = b !== undefined && c !== undefined && g !== undefined ? { buffer: b, callback: c, generator: g } : null;
  return symbols;
}

/**
 * Delivers everything the stream receives from now on to sink, in order. For a net or TLS socket
 * with a stream handle reads land in a buffer of bufferBytes or the sink's direct target
 * (returns "static"); otherwise the sink gets each 'data' chunk (returns "events"). Call it in
 * the turn the stream is handed over: bytes the socket had already buffered are delivered first.
 * The stream is left flowing; pause()/resume() still stop and restart reading, and 'end' and
 * 'close' are emitted as usual.
 */
export function readInto(stream: Duplex, bufferBytes: number, sink: ReadSink): "static" | "events" {
  const syms = onreadSymbols();
  const handle = (stream as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  const mode = syms !== null && stream instanceof net.Socket && typeof handle?.useUserBuffer === "function" ? "static" : "events";
  if (mode === "static") {
    const own = stream as unknown as Record<symbol, unknown>;
    const buffer = Buffer.allocUnsafeSlow(bufferBytes);
    own[syms!.buffer] = buffer;
    // Node calls the callback with the buffer the read landed in, then asks the generator where the next one goes.
    own[syms!.callback] = (nread: number, into: Buffer): boolean => {
      if (into === buffer) sink.bytes(buffer.subarray(0, nread));
      else sink.directFilled(nread);
      return true;
    };
    // An empty target would make the handle read nothing for ever (a TLS socket spins): use ours.
    own[syms!.generator] = (): Buffer => {
      const t = sink.directTarget();
      return t !== null && t.length > 0 ? t : buffer;
    };
    (handle as UserBufferHandle).useUserBuffer(buffer);
  }
  // Bytes read before the switch wait in the readable buffer; they come first.
  let early: Buffer | string | null;
  while ((early = stream.read() as Buffer | string | null) !== null) sink.bytes(typeof early === "string" ? Buffer.from(early) : early);
  stream.on("data", (chunk: Buffer) => sink.bytes(chunk));
  stream.resume();
  return mode;
}
