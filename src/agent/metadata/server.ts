/**
 * One HTTP metadata server per instance, on a unix socket in the instance directory
 * (`<dir>/metadata.sock`). QEMU's user-mode network forwards the guest's connections to
 * 169.254.169.254:80 there (guestfwd → socat, see hypervisor/qemu/cmdline.ts), so the
 * socket itself says which instance asks: no source-address lookup, no shared secret.
 *
 * Each request reads `<dir>/metadata.json` (cached while its mtime/size/inode stay the
 * same), so a rewritten document is served at once. GET and HEAD everywhere, POST only on
 * `openstack/<version>/password` (stored once, as Nova: 409 when set, 400 above 1020
 * bytes). Request bodies are bounded, requests time out, connections per instance are
 * capped. The socket is removed and created afresh on start (a stale one is left behind
 * when the agent dies) and removed on stop.
 */
import { access, chmod, readFile, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { delimiter, join } from 'node:path';
import type { Logger } from '../../common/logger.ts';
import { metadataFiles, parseMetadataDocument, PASSWORD_MAX_BYTES, readPassword, storePassword, type MetadataDocument } from './document.ts';
import { lookup } from './routes.ts';

export interface MetadataServersOptions {
  log: Logger;
  /** Simultaneous connections per instance (each guest connection is one socat); default 32. */
  maxConnections?: number;
  /** Whole-request deadline in ms; default 10 s. */
  requestTimeoutMs?: number;
}

interface Running {
  dir: string;
  socket: string;
  server: Server;
  cache?: { key: string; doc: MetadataDocument };
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** Reads at most `limit` bytes of the body; more is an HttpError(status). */
function readBody(req: IncomingMessage, limit: number, status: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) { reject(new HttpError(status, 'Request is too large.')); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) { cleanup(); reject(new HttpError(status, 'Request is too large.')); return; }
      chunks.push(c);
    };
    const onEnd = () => { cleanup(); resolve(Buffer.concat(chunks)); };
    const onError = (e: Error) => { cleanup(); reject(e); };
    const cleanup = () => { req.off('data', onData); req.off('end', onEnd); req.off('error', onError); };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

async function onPath(cmd: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    try { await access(join(d, cmd), constants.X_OK); return true; } catch { /* next */ }
  }
  return false;
}

export class MetadataServers {
  private readonly log: Logger;
  private readonly maxConnections: number;
  private readonly requestTimeoutMs: number;
  private readonly running = new Map<string, Running>();
  /** Start/stop of one instance run one after the other. */
  private readonly queue = new Map<string, Promise<unknown>>();
  private socatChecked = false;

  constructor(opts: MetadataServersOptions) {
    this.log = opts.log.child({ component: 'metadata' });
    this.maxConnections = opts.maxConnections ?? 32;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  }

  /**
   * Serves `<dir>/metadata.json` on `<dir>/metadata.sock` (returned). Idempotent: a server
   * already running for this uuid and dir is kept. Any file at the socket path is replaced.
   */
  start(uuid: string, dir: string): Promise<string> {
    return this.serialize(uuid, async () => {
      const cur = this.running.get(uuid);
      if (cur && cur.dir === dir) return cur.socket;
      if (cur) await this.shut(uuid, cur);
      await this.checkSocat();
      const socket = metadataFiles(dir).socket;
      await rm(socket, { force: true });
      const entry: Running = { dir, socket, server: this.createServer(uuid, dir) };
      entry.server.on('request', (req: IncomingMessage, res: ServerResponse) => { void this.handle(uuid, entry, req, res); });
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error) => reject(new Error(`metadata server for ${uuid}: cannot listen on ${socket}: ${e.message}`));
        entry.server.once('error', onError);
        entry.server.listen(socket, () => { entry.server.off('error', onError); resolve(); });
      });
      entry.server.on('error', (e: Error) => this.log.error({ uuid, err: e.message }, 'metadata server error'));
      try {
        await chmod(socket, 0o600);
      } catch (e) {
        entry.server.close();
        throw new Error(`metadata server for ${uuid}: ${(e as Error).message}`);
      }
      this.running.set(uuid, entry);
      this.log.info({ uuid, socket }, 'metadata server started');
      return socket;
    });
  }

  /** Stops the instance's server, drops its connections and removes the socket. Idempotent. */
  stop(uuid: string): Promise<void> {
    return this.serialize(uuid, async () => {
      const cur = this.running.get(uuid);
      if (cur) await this.shut(uuid, cur);
    });
  }

  /** Instances with a running server. */
  instances(): string[] {
    return [...this.running.keys()];
  }

  /** The socket of a running server, if any. */
  socketOf(uuid: string): string | undefined {
    return this.running.get(uuid)?.socket;
  }

  /** Stops every server (agent shutdown; start() again after a restart). */
  async close(): Promise<void> {
    await Promise.all([...this.running.keys()].map((uuid) => this.stop(uuid)));
  }

  private serialize<T>(uuid: string, op: () => Promise<T>): Promise<T> {
    const prev = this.queue.get(uuid) ?? Promise.resolve();
    const next = prev.then(op, op);
    const settled = next.then(() => undefined, () => undefined);
    this.queue.set(uuid, settled);
    void settled.then(() => { if (this.queue.get(uuid) === settled) this.queue.delete(uuid); });
    return next;
  }

  private async shut(uuid: string, cur: Running): Promise<void> {
    this.running.delete(uuid);
    await new Promise<void>((resolve) => {
      cur.server.close(() => resolve());
      cur.server.closeAllConnections();
    });
    await rm(cur.socket, { force: true });
    this.log.info({ uuid }, 'metadata server stopped');
  }

  private async checkSocat(): Promise<void> {
    if (this.socatChecked) return;
    this.socatChecked = true;
    if (!(await onPath('socat'))) {
      this.log.warn('socat is not installed (Debian package socat): guests cannot reach the metadata service at 169.254.169.254');
    }
  }

  private createServer(uuid: string, dir: string): Server {
    const server = createServer({
      maxHeaderSize: 8192,
      requestTimeout: this.requestTimeoutMs,
      headersTimeout: Math.min(5000, this.requestTimeoutMs),
      keepAliveTimeout: 5000,
    });
    // A client that half-closes after its request (socat does once its input ends, e.g.
    // `printf 'GET …' | socat - UNIX-CONNECT:…`) still gets its answer: Node's HTTP server
    // otherwise aborts a request whose connection's read side ends. (Long-standing, untyped.)
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    server.maxConnections = this.maxConnections;
    server.maxRequestsPerSocket = 100;
    server.on('clientError', (e: Error, socket) => {
      this.log.debug({ uuid, dir, err: e.message }, 'bad metadata request');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    return server;
  }

  /** The instance's document, re-read when the file changed. Undefined when there is none. */
  private async document(entry: Running): Promise<MetadataDocument | undefined> {
    const file = metadataFiles(entry.dir).document;
    let key: string;
    try {
      const s = await stat(file);
      key = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    if (entry.cache?.key === key) return entry.cache.doc;
    const doc = parseMetadataDocument(JSON.parse(await readFile(file, 'utf8')));
    entry.cache = { key, doc };
    return doc;
  }

  private async handle(uuid: string, entry: Running, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    let status = 500;
    try {
      const doc = await this.document(entry);
      if (!doc) this.log.warn({ uuid, path }, 'metadata request but no metadata document');
      const found = doc ? lookup(doc, path) : { kind: 'not-found' as const };
      // Every body is read, up to the largest one accepted (a password); Nova answers 400 for a longer password.
      const body = await readBody(req, PASSWORD_MAX_BYTES, found.kind === 'password' ? 400 : 413);
      if (found.kind === 'not-found') {
        status = this.reply(req, res, 404, 'Not Found');
      } else if (found.kind === 'data') {
        status = method === 'GET' || method === 'HEAD'
          ? this.reply(req, res, 200, found.body, { 'content-type': found.contentType })
          : this.reply(req, res, 405, 'Method Not Allowed', { allow: 'GET, HEAD' });
      } else if (method === 'GET' || method === 'HEAD') {
        status = this.reply(req, res, 200, (await readPassword(entry.dir)) ?? '');
      } else if (method === 'POST') {
        if (await storePassword(entry.dir, body) === 'exists') status = this.reply(req, res, 409, 'Conflict');
        else {
          this.log.info({ uuid }, 'guest posted its password');
          status = this.reply(req, res, 200, '');
        }
      } else {
        status = this.reply(req, res, 405, 'Method Not Allowed', { allow: 'GET, HEAD, POST' });
      }
    } catch (e) {
      if (e instanceof HttpError) status = this.reply(req, res, e.status, e.message);
      else {
        this.log.error({ uuid, path, err: (e as Error).message }, 'metadata request failed');
        if (!res.headersSent) status = this.reply(req, res, 500, 'Internal Server Error');
        else res.destroy();
      }
    }
    this.log.debug({ uuid, method, path, status }, 'metadata request');
  }

  /**
   * Sends a response. A request whose body was not read to its end (too large) gets
   * `Connection: close` and its socket is dropped once the response is out, so the rest of
   * the body is never drained.
   */
  private reply(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): number {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.statusCode = status;
    res.setHeader('content-type', headers['content-type'] ?? 'text/plain; charset=utf-8');
    for (const [k, v] of Object.entries(headers)) if (k !== 'content-type') res.setHeader(k, v);
    res.setHeader('content-length', buf.length);
    if (!req.complete) {
      res.setHeader('connection', 'close');
      res.once('finish', () => req.socket.destroy());
    }
    res.end(req.method === 'HEAD' ? undefined : buf);
    return status;
  }
}
