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

const CR = 13;
const LF = 10;

/** Index of the blank line ending a head in `b` from `from`: the offset just past it, or -1. */
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const LFLF = Buffer.from('\n\n', 'latin1');

function headEnd(b: Buffer, from: number): number {
  const i = b.indexOf(CRLFCRLF, from);
  if (i >= 0) return i + 4;
  const j = b.indexOf(LFLF, from);
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
    // Header values are not checked character by character here: whoever writes them on (node:http's
    // ServerResponse, node:http2) refuses control characters, and the router answers that as a bad upstream
    // response. Names, the status line and framing are checked.
    // status line: HTTP/1.x SSS[ reason]
    let eol = text.indexOf('\n');
    const lineEnd = eol > 0 && text.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
    if (
      lineEnd < 12 || !text.startsWith('HTTP/1.') || (text.charCodeAt(7) !== 48 && text.charCodeAt(7) !== 49) || text.charCodeAt(8) !== 32 ||
      !isDigit(text.charCodeAt(9)) || !isDigit(text.charCodeAt(10)) || !isDigit(text.charCodeAt(11)) || (lineEnd > 12 && text.charCodeAt(12) !== 32)
    ) {
      throw new ParseError(`invalid status line ${JSON.stringify(text.slice(0, Math.min(40, Math.max(0, lineEnd))))}`);
    }
    const minor = text.charCodeAt(7) - 48;
    const statusCode = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
    const headers: Record<string, string | string[]> = {};
    let last = '';
    let connection: string | undefined;
    let keepAlive: string | undefined;
    let te: string | undefined;
    let cl: string | undefined;
    let clConflict = false;
    for (let pos = eol + 1; pos < text.length; pos = eol + 1) {
      eol = text.indexOf('\n', pos);
      if (eol < 0) eol = text.length;
      let e = eol;
      if (e > pos && text.charCodeAt(e - 1) === CR) e--;
      if (e === pos) continue; // the blank line ending the head
      const c0 = text.charCodeAt(pos);
      if (c0 === 32 || c0 === 9) {
        // obsolete line folding: part of the previous value
        if (!last) throw new ParseError('header continuation without a header');
        const more = text.slice(pos, e).trim();
        const prev = headers[last];
        if (Array.isArray(prev)) prev[prev.length - 1] += ` ${more}`;
        else headers[last] = `${prev ?? ''} ${more}`;
        continue;
      }
      // name: token characters up to the colon (lower-cased on the way when needed)
      let k = pos;
      let upper = false;
      for (; k < e; k++) {
        const c = text.charCodeAt(k);
        if (c === 58) break;
        const t = c < 128 ? (TOKEN_CHARS[c] as number) : 0;
        if (t === 0) throw new ParseError(`invalid header line ${JSON.stringify(text.slice(pos, Math.min(e, pos + 40)))}`);
        if (t === 2) upper = true;
      }
      if (k === pos || k === e) throw new ParseError(`invalid header line ${JSON.stringify(text.slice(pos, Math.min(e, pos + 40)))}`);
      const name = upper ? text.slice(pos, k).toLowerCase() : text.slice(pos, k);
      // value: without leading and trailing whitespace
      let vs = k + 1;
      let ve = e;
      while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
      while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
      const value = text.slice(vs, ve);
      last = name;
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (Array.isArray(prev)) prev.push(value);
      else headers[name] = [prev, value];
      switch (name) {
        case 'connection':
          connection = connection === undefined ? value : `${connection}, ${value}`;
          break;
        case 'keep-alive':
          keepAlive = value;
          break;
        case 'transfer-encoding':
          te = te === undefined ? value : `${te}, ${value}`;
          break;
        case 'content-length':
          if (cl !== undefined && cl !== value) clConflict = true;
          cl = value;
          break;
      }
    }
    if (statusCode < 200) {
      if (statusCode === 101) throw new ParseError('101 Switching Protocols to a request that asked for no upgrade');
      this.#state = State.Head;
      return undefined;
    }
    let close: boolean;
    if (connection === undefined) close = minor === 0;
    else if (connection === 'keep-alive' || connection === 'Keep-Alive') close = false;
    else {
      const conn = connection.toLowerCase();
      close = hasToken(conn, 'close') || (minor === 0 && !hasToken(conn, 'keep-alive'));
    }
    let keepAliveMs: number | undefined;
    if (keepAlive !== undefined) {
      const t = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(keepAlive);
      if (t) keepAliveMs = Number(t[1]) * 1000;
    }
    const head: ResponseHead = { statusCode, minor, headers, close, keepAliveMs };
    // framing (RFC 9112 6.3)
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
      if (clConflict || cl.length === 0 || cl.length > 15 || !allDigits(cl)) throw new ParseError(`invalid Content-Length ${JSON.stringify(joined(headers['content-length']))}`);
      this.#remaining = Number(cl);
      this.#state = this.#remaining === 0 ? State.Done : State.Length;
    } else {
      this.#state = State.UntilClose;
      head.close = true;
    }
    return head;
  }
}

/** 1: a token character (RFC 9110 5.6.2), 2: an upper-case letter (also a token character), 0: neither. */
const TOKEN_CHARS = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TOKEN_CHARS[c.charCodeAt(0)] = 1;
for (let c = 65; c <= 90; c++) TOKEN_CHARS[c] = 2;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function allDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}


function joined(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
}

function hasToken(list: string, token: string): boolean {
  if (list === token) return true;
  for (const t of list.split(',')) if (t.trim() === token) return true;
  return false;
}
