/**
 * The metadata service on tenant networks (Neutron's metadata proxy): in every qdhcp
 * namespace an haproxy listens on 169.254.169.254:80 (guests reach it through the
 * classless static route the DHCP server hands out) and forwards to the agent's unix
 * socket, replacing X-Forwarded-For with the client's address and adding the network id.
 * The agent maps (network, source address) to the instance through the DHCP hosts of that
 * network and streams the request to the instance's own metadata server socket. Unknown
 * addresses get 404. Anti-spoofing makes the source address trustworthy.
 *
 * Why haproxy: it is what Neutron runs, it is small, and a process is needed inside the
 * namespace anyway (node cannot listen in another network namespace).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, chown, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { isIP } from 'node:net';
import type { Logger } from '../../common/logger.ts';
import { daemonStatus, startDaemon, stopDaemon, type DaemonSpec } from './daemon.ts';
import { METADATA_IP } from './dhcp.ts';
import { writeIfChanged } from './util.ts';

export const NETWORK_HEADER = 'x-gureum-network-id';

/** Who haproxy runs as (it binds port 80 first, then drops to this user). */
export interface ProxyUser { user: string; group: string; gid: number }

export function proxyUser(): ProxyUser | undefined {
  try {
    const gid = Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2]);
    execFileSync('getent', ['passwd', 'nobody']);
    return Number.isInteger(gid) ? { user: 'nobody', group: 'nogroup', gid } : undefined;
  } catch { return undefined; }
}

export function renderHaproxy(networkId: string, socket: string, pidFile: string, user: ProxyUser | undefined): string {
  return [
    'global',
    '    maxconn 256',
    ...(user ? [`    user ${user.user}`, `    group ${user.group}`] : []),
    `    pidfile ${pidFile}`,
    '    daemon',
    '',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    timeout http-request 10s',
    '    option http-server-close',
    '',
    'listen metadata',
    `    bind ${METADATA_IP}:80`,
    '    http-request del-header X-Forwarded-For',
    `    http-request set-header X-Gureum-Network-Id ${networkId}`,
    '    option forwardfor',
    `    server agent unix@${socket}`,
    '',
  ].join('\n');
}

/** Runs haproxy for one network in its qdhcp namespace; true when it (re)started. */
export async function convergeHaproxy(ns: string, dir: string, networkId: string, socket: string, user: ProxyUser | undefined): Promise<boolean> {
  const cfg = join(dir, 'haproxy.cfg');
  const pidFile = join(dir, 'haproxy.pid');
  const changed = await writeIfChanged(cfg, renderHaproxy(networkId, socket, pidFile, user));
  const spec: DaemonSpec = { ns, argv: ['haproxy', '-f', cfg], pidFile };
  const st = await daemonStatus(spec);
  if (st.state === 'running' && !changed) return false;
  if (st.state !== 'stopped') await stopDaemon(spec);
  await startDaemon(spec);
  return true;
}

export async function stopHaproxy(ns: string, dir: string): Promise<boolean> {
  return stopDaemon({ ns, argv: ['haproxy'], pidFile: join(dir, 'haproxy.pid') });
}

export interface MetadataLookup {
  /** The instance behind (network, address), if any. */
  instanceFor(networkId: string, ip: string): string | undefined;
  /** Its metadata server socket (the per-instance server of agent/metadata). */
  resolveSocket(instanceUuid: string): string | undefined;
}

/** The agent's end: one unix-socket HTTP server that routes each request to the right instance. */
export class MetadataRouter {
  private server?: Server;

  constructor(private readonly socket: string, private readonly lookup: MetadataLookup, private readonly log: Logger) {}

  /** `gid`: the group haproxy runs as (socket 0660 root:gid); none: haproxy runs as root (socket 0600). */
  async start(gid?: number): Promise<void> {
    if (this.server) return;
    await rm(this.socket, { force: true });
    const server = createServer({ maxHeaderSize: 8192, requestTimeout: 30_000, headersTimeout: 10_000 });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    server.on('clientError', (_e, sock) => { sock.destroy(); });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socket, () => { server.off('error', reject); resolve(); });
    });
    // haproxy connects after dropping to nobody:nogroup; nobody else may.
    if (gid !== undefined) await chown(this.socket, 0, gid);
    await chmod(this.socket, gid !== undefined ? 0o660 : 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
    await rm(this.socket, { force: true });
  }

  private fail(res: ServerResponse, status: number, text: string): void {
    if (res.headersSent) { res.destroy(); return; }
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const network = req.headers[NETWORK_HEADER];
    const xff = req.headers['x-forwarded-for'];
    const ip = typeof xff === 'string' ? xff.trim() : '';
    if (typeof network !== 'string' || !network || !isIP(ip) || ip.includes(',')) {
      this.log.warn({ network, xff }, 'metadata request without a network or a single client address');
      this.fail(res, 400, 'Bad Request');
      return;
    }
    const uuid = this.lookup.instanceFor(network, ip);
    const socketPath = uuid ? this.lookup.resolveSocket(uuid) : undefined;
    if (!uuid || !socketPath) {
      this.log.info({ network, ip, uuid, path: req.url }, 'metadata request from an unknown address');
      req.resume();
      this.fail(res, 404, 'Not Found');
      return;
    }
    const headers = { ...req.headers };
    delete headers[NETWORK_HEADER];
    const up = request({ socketPath, method: req.method, path: req.url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (e) => {
      this.log.warn({ network, ip, uuid, err: e.message }, 'instance metadata server unreachable');
      this.fail(res, 502, 'Bad Gateway');
    });
    req.pipe(up);
    this.log.debug({ network, ip, uuid, method: req.method, path: req.url }, 'metadata request');
  }
}
