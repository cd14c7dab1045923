import { connect, headers as natsHeaders, JSONCodec, type Msg, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from '../common/logger.ts';
import { newRequestId } from '../common/ids.ts';

/**
 * A subject with its request and reply types bound, so both ends of a conversation
 * agree at compile time: `const Ping = subject<PingReq, PingRes>('gureum.health.ping')`.
 */
export interface Subject<Req, Res> { readonly name: string; readonly _req?: Req; readonly _res?: Res }
export function subject<Req, Res = void>(name: string): Subject<Req, Res> { return { name }; }

export interface BusMessageMeta { requestId: string }

export class BusTimeout extends Error {
  constructor(subjectName: string, ms: number) { super(`no reply on ${subjectName} within ${ms} ms`); }
}
export class BusRemoteError extends Error {}

interface Envelope<T> { ok: true; body: T }
interface ErrorEnvelope { ok: false; error: string }

const codec = JSONCodec<unknown>();
const REQUEST_ID_HEADER = 'X-Request-Id';

export class Bus {
  private constructor(private readonly nc: NatsConnection, private readonly log: Logger) {}

  static async connect(url: string, log: Logger, name = 'gureum'): Promise<Bus> {
    const nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    log.info({ url, server: nc.info?.server_id }, 'bus connected');
    return new Bus(nc, log);
  }

  /** Send a request and wait for its reply; fails with BusTimeout after `timeoutMs`. */
  async request<Req, Res>(s: Subject<Req, Res>, body: Req, opts: { timeoutMs?: number; requestId?: string } = {}): Promise<Res> {
    const timeout = opts.timeoutMs ?? 5000;
    const h = natsHeaders();
    h.set(REQUEST_ID_HEADER, opts.requestId ?? newRequestId());
    let msg;
    try {
      msg = await this.nc.request(s.name, codec.encode(body), { timeout, headers: h });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'TIMEOUT' || code === '503') throw new BusTimeout(s.name, timeout);
      throw err;
    }
    const env = codec.decode(msg.data) as Envelope<Res> | ErrorEnvelope;
    if (!env.ok) throw new BusRemoteError(env.error);
    return env.body;
  }

  /** Answer requests on a subject; a thrown error travels back to the caller as BusRemoteError. */
  serve<Req, Res>(s: Subject<Req, Res>, handler: (body: Req, meta: BusMessageMeta) => Promise<Res> | Res, queue?: string): Subscription {
    const sub = this.nc.subscribe(s.name, { queue });
    // Requests are handled concurrently: a slow one (a VM build) must not hold up the rest.
    const handle = async (m: Msg) => {
      const requestId = m.headers?.get(REQUEST_ID_HEADER) || newRequestId();
      let reply: Envelope<Res> | ErrorEnvelope;
      try {
        reply = { ok: true, body: await handler(codec.decode(m.data) as Req, { requestId }) };
      } catch (err) {
        this.log.warn({ err, subject: s.name, requestId }, 'bus handler failed');
        reply = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      m.respond(codec.encode(reply));
    };
    void (async () => { for await (const m of sub) void handle(m); })();
    return sub;
  }

  publish<T>(s: Subject<T, void>, body: T): void { this.nc.publish(s.name, codec.encode(body)); }

  subscribe<T>(s: Subject<T, void>, handler: (body: T) => void): Subscription {
    const sub = this.nc.subscribe(s.name);
    void (async () => { for await (const m of sub) handler(codec.decode(m.data) as T); })();
    return sub;
  }

  /** Round-trip time to the server in ms; throws if the bus is down. */
  async rtt(): Promise<number> { return this.nc.rtt(); }

  get closed(): boolean { return this.nc.isClosed(); }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain();
  }
}

/** Health check every process answers: who it is and since when. */
export interface HealthReply { process: string; host: string; pid: number; startedAt: string }
export const HealthPing = subject<{ from: string }, HealthReply>('gureum.health.ping');
