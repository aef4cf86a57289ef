// An incremental HTTP/1.x response parser for the upstream client: status line and headers (lower-case names,
// repeated headers as arrays), then the body framed by Content-Length, chunked Transfer-Encoding, or the
// connection's end; informational (1xx) heads are skipped. Malformed input ends in a ParseError naming what was
// wrong (the pool reports it as an upstream protocol error, UPE); it never throws anything else.

/** Envoy's default max_response_headers_kb (60 KiB). */
export const MAX_HEAD_BYTES = 60 * 1024;

export class ParseError extends Error {}

export interface ResponseHead {
  statusCode: number;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  headers: Record<string, string | string[]>;
  /** The server asked to close the connection (or HTTP/1.0 without keep-alive). */
  close: boolean;
  /** Keep-Alive: timeout=N from the server, in ms; undefined when absent. */
  keepAliveMs: number | undefined;
}

/** What the parser tells its connection; calls happen synchronously inside execute(). */
export interface ParserEvents {
  onHead(head: ResponseHead): void;
  /** A slice of the body (may share memory with the input chunk). */
  onBody(chunk: Buffer): void;
  /** The response is complete; `rest` is how many input bytes of the chunk followed it. */
  onComplete(rest: number): void;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Node's rule for header values: tab, visible ASCII and obs-text. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;
const CR = 13;
const LF = 10;

/** Index of the blank line ending a head in `b` from `from`: the offset just past it, or -1. */
function headEnd(b: Buffer, from: number): number {
  const i = b.indexOf('\r\n\r\n', from, 'latin1');
  if (i >= 0) return i + 4;
  const j = b.indexOf('\n\n', from, 'latin1');
  return j >= 0 ? j + 2 : -1;
}

export class ResponseParser {
  #state = State.Done;
  #noBody = false;
  #remaining = 0;
  /** Bytes of a head (or chunk-size line, or trailers) split across reads. */
  #partial: Buffer | undefined;
  readonly #ev: ParserEvents;

  constructor(events: ParserEvents) {
    this.#ev = events;
  }

  /** Expects a response to a request; HEAD requests get no body whatever the headers say. */
  expect(headRequest: boolean): void {
    this.#state = State.Head;
    this.#noBody = headRequest;
    this.#partial = undefined;
  }

  /** Between a head and the end of its body. */
  get inBody(): boolean {
    return this.#state !== State.Head && this.#state !== State.Done;
  }

  /** Framed by the connection's end: EOF completes it. */
  get untilClose(): boolean {
    return this.#state === State.UntilClose;
  }

  get done(): boolean {
    return this.#state === State.Done;
  }

  /** The connection ended: completes a body read until close. */
  finish(): void {
    if (this.#state === State.UntilClose) {
      this.#state = State.Done;
      this.#ev.onComplete(0);
    }
  }

  /** Feeds one chunk from the socket; throws ParseError for a malformed response. */
  execute(chunk: Buffer): void {
    let b = chunk;
    let i = 0;
    if (this.#partial) {
      b = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    while (i < b.length) {
      switch (this.#state) {
        case State.Done:
          throw new ParseError('data after the end of the response');
        case State.Head: {
          const end = headEnd(b, i);
          if (end < 0) {
            if (b.length - i > MAX_HEAD_BYTES) throw new ParseError('response headers larger than 60 KiB');
            this.#partial = b.subarray(i);
            return;
          }
          if (end - i > MAX_HEAD_BYTES) throw new ParseError('response headers larger than 60 KiB');
          const head = this.#parseHead(b.toString('latin1', i, end));
          i = end;
          if (head === undefined) continue; // 1xx: the real response follows
          this.#ev.onHead(head);
          if ((this.#state as State) === State.Done) {
            this.#ev.onComplete(b.length - i);
            return;
          }
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, b.length - i);
          this.#remaining -= n;
          this.#ev.onBody(b.subarray(i, i + n));
          i += n;
          if (this.#remaining === 0) {
            this.#state = State.Done;
            this.#ev.onComplete(b.length - i);
            return;
          }
          break;
        }
        case State.UntilClose:
          this.#ev.onBody(i === 0 ? b : b.subarray(i));
          return;
        case State.ChunkSize: {
          const lf = b.indexOf(LF, i);
          if (lf < 0) {
            if (b.length - i > 1024) throw new ParseError('chunk size line too long');
            this.#partial = b.subarray(i);
            return;
          }
          let line = b.toString('latin1', i, lf > i && b[lf - 1] === CR ? lf - 1 : lf);
          const semi = line.indexOf(';');
          if (semi >= 0) line = line.slice(0, semi);
          line = line.trim();
          if (!/^[0-9a-fA-F]{1,15}$/.test(line)) throw new ParseError(`invalid chunk size ${JSON.stringify(line.slice(0, 20))}`);
          this.#remaining = parseInt(line, 16);
          i = lf + 1;
          this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, b.length - i);
          this.#remaining -= n;
          this.#ev.onBody(b.subarray(i, i + n));
          i += n;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          // CRLF (or LF) after the chunk's data
          if (b[i] === CR) {
            if (i + 1 >= b.length) {
              this.#partial = b.subarray(i);
              return;
            }
            if (b[i + 1] !== LF) throw new ParseError('chunk data not followed by CRLF');
            i += 2;
          } else if (b[i] === LF) i += 1;
          else throw new ParseError('chunk data longer than its size');
          this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // trailer fields until a blank line (HTTP/1.1 trailers are not forwarded)
          if (b[i] === LF || (b[i] === CR && b[i + 1] === LF)) {
            i += b[i] === LF ? 1 : 2;
            this.#state = State.Done;
            this.#ev.onComplete(b.length - i);
            return;
          }
          if (b[i] === CR && i + 1 >= b.length) {
            this.#partial = b.subarray(i);
            return;
          }
          const end = headEnd(b, i);
          if (end < 0) {
            if (b.length - i > MAX_HEAD_BYTES) throw new ParseError('response trailers larger than 60 KiB');
            this.#partial = b.subarray(i);
            return;
          }
          i = end;
          this.#state = State.Done;
          this.#ev.onComplete(b.length - i);
          return;
        }
      }
    }
  }

  /** Parses a head (ending with its blank line); undefined for an informational response. */
  #parseHead(text: string): ResponseHead | undefined {
    const lines = text.split('\n');
    const first = lines[0] ?? '';
    const m = STATUS_LINE.exec(first.endsWith('\r') ? first.slice(0, -1) : first);
    if (!m) throw new ParseError(`invalid status line ${JSON.stringify(first.slice(0, 40))}`);
    const minor = m[1] === '1' ? 1 : 0;
    const statusCode = Number(m[2]);
    const headers: Record<string, string | string[]> = {};
    let last = '';
    // the head ends with "\r\n\r\n": the last two entries of the split are empty (or "\r")
    for (let k = 1; k < lines.length; k++) {
      let line = lines[k] as string;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') continue;
      const c0 = line.charCodeAt(0);
      if (c0 === 32 || c0 === 9) {
        // obsolete line folding: part of the previous value
        if (!last) throw new ParseError('header continuation without a header');
        const prev = headers[last];
        const more = line.trim();
        if (Array.isArray(prev)) prev[prev.length - 1] += ` ${more}`;
        else headers[last] = `${prev ?? ''} ${more}`;
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ParseError(`invalid header line ${JSON.stringify(line.slice(0, 40))}`);
      const rawName = line.slice(0, colon);
      if (!TOKEN.test(rawName)) throw new ParseError(`invalid header name ${JSON.stringify(rawName.slice(0, 40))}`);
      const value = line.slice(colon + 1).trim();
      if (INVALID_VALUE.test(value)) throw new ParseError(`invalid character in header ${rawName}`);
      const name = rawName.toLowerCase();
      last = name;
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (Array.isArray(prev)) prev.push(value);
      else headers[name] = [prev, value];
    }
    if (statusCode < 200) {
      if (statusCode === 101) throw new ParseError('101 Switching Protocols to a request that asked for no upgrade');
      this.#state = State.Head;
      return undefined;
    }
    const connection = joined(headers.connection)?.toLowerCase();
    const close = connection !== undefined && hasToken(connection, 'close') ? true : minor === 0 ? !(connection !== undefined && hasToken(connection, 'keep-alive')) : false;
    let keepAliveMs: number | undefined;
    const ka = joined(headers['keep-alive']);
    if (ka !== undefined) {
      const t = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(ka);
      if (t) keepAliveMs = Number(t[1]) * 1000;
    }
    const head: ResponseHead = { statusCode, minor, headers, close, keepAliveMs };
    // framing (RFC 9112 6.3)
    const te = joined(headers['transfer-encoding']);
    const cl = headers['content-length'];
    if (this.#noBody || statusCode === 204 || statusCode === 304) {
      this.#state = State.Done;
    } else if (te !== undefined) {
      if (cl !== undefined) throw new ParseError('both Content-Length and Transfer-Encoding');
      const codings = te.toLowerCase().split(',');
      if ((codings[codings.length - 1] as string).trim() === 'chunked') this.#state = State.ChunkSize;
      else {
        this.#state = State.UntilClose;
        head.close = true;
      }
    } else if (cl !== undefined) {
      const values = Array.isArray(cl) ? cl : [cl];
      const v = values[0] as string;
      if (!/^\d{1,15}$/.test(v) || values.some((x) => x !== v)) throw new ParseError(`invalid Content-Length ${JSON.stringify(joined(cl))}`);
      this.#remaining = Number(v);
      this.#state = this.#remaining === 0 ? State.Done : State.Length;
    } else {
      this.#state = State.UntilClose;
      head.close = true;
    }
    return head;
  }
}

function joined(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
}

function hasToken(list: string, token: string): boolean {
  if (list === token) return true;
  for (const t of list.split(',')) if (t.trim() === token) return true;
  return false;
}
