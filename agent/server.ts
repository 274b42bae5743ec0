// The CNI socket: a root-only unix socket (folder 0700, socket 0600) speaking the tiny protocol of
// src/cni/wire.ts. Each connection carries one request; the handler's answer goes back verbatim.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
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

export async function serveCni(path: string, handler: CniHandler, log: Logger): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  chmodSync(dirname(path), 0o700);
  // A socket file left by a previous agent: remove it (a still-running old agent keeps serving
  // its open connections on the unlinked socket until it exits).
  rmSync(path, { force: true });
  const server = createServer({ allowHalfOpen: true }, (conn) => {
    const accepted = performance.now();
    const chunks: Buffer[] = [];
    conn.on('data', (c: Buffer) => chunks.push(c));
    conn.on('error', (err) => log.debug({ err }, 'CNI connection error'));
    conn.on('end', () => {
      void answer(Buffer.concat(chunks).toString('utf8'), accepted)
        .then((a) => conn.end(encodeAnswer(a)))
        .catch((err: unknown) => {
          log.error({ err }, 'CNI handler crashed');
          conn.end(
            encodeAnswer({ exitCode: 1, stdout: JSON.stringify(CniError.from(err).toJSON(LATEST_VERSION)) }),
          );
        });
    });
  });

  async function answer(text: string, accepted: number): Promise<WireAnswer> {
    const received = performance.now();
    let req: WireRequest;
    try {
      req = JSON.parse(text) as WireRequest;
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
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  log.info({ socket: path }, 'serving CNI requests');
  return server;
}
