// The CNI socket: a root-only unix socket (folder 0700, socket 0600) speaking the tiny protocol of
// src/cni/wire.ts. Each connection carries one request; the handler's answer goes back verbatim.
// Bounded: a request larger than maxRequestBytes is refused, a connection that sends nothing for
// idleMs is closed, at most maxConnections are open at once, and close() drains: it stops
// accepting, waits for the requests in flight, and unlinks the socket only if the path is still
// this process's own (a successor that bound the same path keeps serving).
import { chmodSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { CniError, CniErrorCode } from '../src/cni/errors.ts';
import { LATEST_VERSION } from '../src/cni/version.ts';
import { encodeAnswer, type WireAnswer, type WireRequest } from '../src/cni/wire.ts';
import type { Logger } from '../src/log/logger.ts';

/** When a request's connection was accepted, fully read, and parsed (performance.now() ms). */
export interface RequestTiming {
  accepted: number;
  received: number;
  parsed: number;
}

export type CniHandler = (req: WireRequest, timing: RequestTiming) => Promise<WireAnswer>;

export interface ServeLimits {
  /** @default 1 MiB: a conflist with a prevResult is a few KiB. */
  maxRequestBytes: number;
  /** @default 256: kubelet runs a handful of sandboxes at once. */
  maxConnections: number;
  /** A connection that has not sent its whole request after this long is closed. @default 10 s */
  idleMs: number;
}

export const DEFAULT_LIMITS: ServeLimits = { maxRequestBytes: 1 << 20, maxConnections: 256, idleMs: 10_000 };

export interface CniServer {
  readonly server: Server;
  /** Requests being handled now. */
  readonly inFlight: number;
  /** Stops accepting, waits up to drainMs for requests in flight, unlinks the socket if ours. */
  close(drainMs: number): Promise<void>;
}

function errorAnswer(code: number, msg: string): string {
  return encodeAnswer({
    exitCode: 1,
    stdout: JSON.stringify(new CniError(code, msg).toJSON(LATEST_VERSION)),
  });
}

/** Inode of the socket file, or undefined when the path is gone. */
function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

export async function serveCni(
  path: string,
  handler: CniHandler,
  log: Logger,
  limits: ServeLimits = DEFAULT_LIMITS,
): Promise<CniServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  chmodSync(dirname(path), 0o700);
  // Bound under a per-process name, then renamed over the stable path: this replaces a socket
  // left by a previous agent atomically (a still-running old agent keeps serving its open
  // connections), and when this server closes, the unlink that Node does on close hits the
  // per-process name, which is already gone, never a successor's socket at the stable path.
  const bindPath = `${path}.${process.pid}`;
  rmSync(bindPath, { force: true });
  const pending = new Set<Promise<void>>();
  let draining = false;
  const server = createServer({ allowHalfOpen: true }, (conn) => accept(conn));
  server.maxConnections = limits.maxConnections;

  function accept(conn: Socket): void {
    const accepted = performance.now();
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    conn.setTimeout(limits.idleMs);
    conn.on('timeout', () => {
      if (done) return;
      done = true;
      log.debug('CNI connection idle: closed');
      conn.destroy();
    });
    conn.on('error', (err) => log.debug({ err }, 'CNI connection error'));
    conn.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limits.maxRequestBytes) {
        done = true;
        conn.end(
          errorAnswer(
            CniErrorCode.InvalidConfig,
            `the request is larger than ${limits.maxRequestBytes} bytes: the network configuration is too large`,
          ),
        );
        // Stop reading what is left; the answer above is written before the socket closes.
        conn.pause();
        setTimeout(() => conn.destroy(), 1000).unref();
        return;
      }
      chunks.push(c);
    });
    conn.on('end', () => {
      if (done) return;
      done = true;
      conn.setTimeout(0);
      if (draining) {
        // Connected before the path went away: a real answer, never a reset connection.
        conn.end(errorAnswer(CniErrorCode.TryAgainLater, 'the trellis agent is shutting down; try again'));
        return;
      }
      const p = answer(Buffer.concat(chunks).toString('utf8'), accepted)
        .then((a) => void conn.end(encodeAnswer(a)))
        .catch((err: unknown) => {
          log.error({ err }, 'CNI handler crashed');
          conn.end(errorAnswer(CniErrorCode.Internal, CniError.from(err).message));
        })
        .finally(() => pending.delete(p));
      pending.add(p);
    });
  }

  async function answer(text: string, accepted: number): Promise<WireAnswer> {
    const received = performance.now();
    let req: WireRequest;
    try {
      req = JSON.parse(text) as WireRequest;
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new Error('not an object');
    } catch {
      const err = new CniError(
        CniErrorCode.DecodeFailure,
        'the agent could not decode the request from the plugin',
      );
      return { exitCode: 1, stdout: JSON.stringify(err.toJSON(LATEST_VERSION)) };
    }
    return handler(req, { accepted, received, parsed: performance.now() });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bindPath, () => resolve());
  });
  chmodSync(bindPath, 0o600);
  const ownInode = inodeOf(bindPath);
  renameSync(bindPath, path);
  log.info({ socket: path, limits }, 'serving CNI requests');

  return {
    server,
    get inFlight() {
      return pending.size;
    },
    async close(drainMs: number): Promise<void> {
      // First the path, so nothing new connects (the plugin answers "not running" with code 11);
      // only while it is still our socket (a successor replaced it otherwise). The listener stays
      // open while draining: a connection already queued on it gets code 11, not a reset, which
      // is what closing a listener does to its queue.
      draining = true;
      if (ownInode !== undefined && inodeOf(path) === ownInode) rmSync(path, { force: true });
      const drained = Promise.allSettled([...pending]);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, drainMs)))]);
      clearTimeout(timer);
      if (pending.size > 0) log.warn({ inFlight: pending.size }, 'CNI requests still running at shutdown');
      // The last connections queued before the unlink are accepted and answered by now.
      await new Promise((r) => setTimeout(r, 50));
      await Promise.race([
        new Promise<void>((r) => server.close(() => r())),
        new Promise<void>((r) => setTimeout(r, 100)),
      ]);
    },
  };
}
