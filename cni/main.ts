// The TypeScript candidate of the CNI plugin executable (the shipped one is the C forwarder
// cni/trellis-cni.c, chosen by the figures in docs/cni-shim.md; both must behave alike, see
// test/integration/cni-forwarder.test.ts): a thin shim between the container runtime and the node
// agent. It validates what it can without the agent (environment, JSON, cniVersion), answers
// VERSION itself, and forwards every other verb as {env, config} over the agent's root-only unix
// socket, printing the agent's answer unchanged. It must stay small and start fast: no kube
// client, no logger, nothing but a unix socket (Bun's own when compiled, node:net under Node) and
// the CNI types (it is compiled to one executable).
//
// Deadline: the whole invocation ends within `timeoutSeconds` of the config (default 100 s, at
// most 110 s), below kubelet's 2 minute runtime request timeout, so the runtime always gets a
// CNI answer: when the agent has not answered by then, code 11 (try again later). The agent's own
// per-request deadline (90 s) is shorter still, so normally the agent answers first.
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { CniError, CniErrorCode } from '../src/cni/errors.ts';
import {
  CNI_COMMANDS,
  DEFAULT_SOCKET,
  type CniCommand,
  type CniEnv,
  type NetConf,
} from '../src/cni/types.ts';
import {
  LATEST_VERSION,
  SUPPORTED_VERSIONS,
  assertSupportedVersion,
  isSupportedVersion,
} from '../src/cni/version.ts';
import { decodeAnswer, type WireRequest } from '../src/cni/wire.ts';
import { REQUIRED_ENV } from '../src/cni/validate.ts';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

function finish(code: 0 | 1, stdout: string): never {
  if (stdout) process.stdout.write(stdout.endsWith('\n') ? stdout : `${stdout}\n`);
  process.exitCode = code;
  // Let stdout drain; exit explicitly so no handle keeps us alive.
  process.stdout.write('', () => process.exit(code));
  throw new Exit();
}

class Exit extends Error {}

function fail(err: CniError, cniVersion: string): never {
  return finish(1, JSON.stringify(err.toJSON(cniVersion)));
}

/** Default and largest plugin deadline in seconds (kubelet gives the runtime 120 s). */
export const DEFAULT_TIMEOUT_SECONDS = 100;
export const MAX_TIMEOUT_SECONDS = 110;

/** The config's cniVersion when we speak it, else ours (answers must be in a version we speak). */
function versionOf(raw: string): string {
  try {
    const v = (JSON.parse(raw) as { cniVersion?: unknown }).cniVersion;
    return isSupportedVersion(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

function deadlineSeconds(config: NetConf): number {
  const t = config.timeoutSeconds;
  return typeof t === 'number' && Number.isInteger(t) && t >= 1 && t <= MAX_TIMEOUT_SECONDS
    ? t
    : DEFAULT_TIMEOUT_SECONDS;
}

function main(): void {
  const command = process.env.CNI_COMMAND as CniCommand | undefined;
  const raw = readStdin();

  if (!command || !CNI_COMMANDS.includes(command)) {
    fail(
      new CniError(
        CniErrorCode.InvalidEnvironment,
        command
          ? `unknown CNI_COMMAND ${JSON.stringify(command)}; expected one of ${CNI_COMMANDS.join(', ')}`
          : 'CNI_COMMAND is not set',
      ),
      versionOf(raw),
    );
  }

  if (command === 'VERSION') {
    // Answered locally so a runtime can probe the plugin even before the agent is up.
    finish(0, JSON.stringify({ cniVersion: versionOf(raw), supportedVersions: SUPPORTED_VERSIONS }));
  }

  let config: NetConf;
  try {
    config = JSON.parse(raw) as NetConf;
    if (typeof config !== 'object' || config === null || Array.isArray(config))
      throw new Error('not a JSON object');
  } catch (err: unknown) {
    fail(
      new CniError(
        CniErrorCode.DecodeFailure,
        `cannot decode the network configuration on stdin: ${(err as Error).message}`,
      ),
      LATEST_VERSION,
    );
  }

  const cniVersion = isSupportedVersion(config.cniVersion) ? config.cniVersion : LATEST_VERSION;
  try {
    assertSupportedVersion(config.cniVersion);
  } catch (err: unknown) {
    // Code 1 is written in the version asked (as the C forwarder does), so the runtime reads it.
    const asked = typeof config.cniVersion === 'string' && config.cniVersion ? config.cniVersion : cniVersion;
    fail(CniError.from(err), asked);
  }

  const env: CniEnv = { CNI_COMMAND: command };
  for (const key of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  const missing = REQUIRED_ENV[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    fail(
      new CniError(
        CniErrorCode.InvalidEnvironment,
        `${command} needs ${missing.join(', ')} in the environment`,
      ),
      cniVersion,
    );
  }

  const mode = config.type !== 'trellis' && config.ipam?.type === 'trellis' ? 'ipam' : 'plugin';
  const socket = (mode === 'ipam' ? (config.ipam?.socket ?? config.socket) : config.socket) ?? DEFAULT_SOCKET;
  const seconds = deadlineSeconds(config);
  const request: WireRequest = { env, config, mode, timeoutMs: seconds * 1000 };
  setTimeout(() => {
    try {
      fail(
        new CniError(
          CniErrorCode.TryAgainLater,
          `trellis agent at ${socket} did not answer ${command} within ${seconds} s`,
        ),
        cniVersion,
      );
    } catch (e: unknown) {
      if (!(e instanceof Exit)) throw e;
    }
  }, seconds * 1000).unref();
  forward(socket, request, command, cniVersion);
}

/** The part of Bun's socket API the shim uses (Bun.connect; absent when run by Node). */
interface BunSocket {
  write(data: string): number;
  shutdown(): void;
}
interface BunRuntime {
  connect(opts: {
    unix: string;
    allowHalfOpen: boolean;
    socket: {
      data(socket: BunSocket, data: Uint8Array): void;
      close(socket: BunSocket): void;
      error(socket: BunSocket, err: Error): void;
    };
  }): Promise<BunSocket>;
}

function forward(socket: string, request: WireRequest, command: CniCommand, cniVersion: string): void {
  // The compiled shim runs on Bun, whose native socket starts faster than its node:net layer
  // (measured ~1.5 ms of the shim's ~10 ms per ADD/DEL); Node runs the bundled candidate.
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (bun) forwardBun(bun, socket, request, command, cniVersion);
  else forwardNode(socket, request, command, cniVersion);
}

/** Prints the agent's answer (or an I/O error when it is malformed) and exits. */
function answered(text: string, socket: string, cniVersion: string): void {
  try {
    const answer = decodeAnswer(text);
    finish(answer.exitCode, answer.stdout);
  } catch (err: unknown) {
    if (err instanceof Exit) return;
    try {
      fail(
        new CniError(CniErrorCode.IOFailure, `trellis agent at ${socket}: ${(err as Error).message}`),
        cniVersion,
      );
    } catch (e: unknown) {
      if (!(e instanceof Exit)) throw e;
    }
  }
}

function socketFailed(
  err: NodeJS.ErrnoException,
  connected: boolean,
  socket: string,
  command: CniCommand,
  cniVersion: string,
): void {
  try {
    if (!connected && command === 'DEL') {
      // The agent is gone (node draining, agent being replaced). DEL must still succeed or the
      // runtime retries forever and the pod never goes away: the veth dies with the netns, and
      // the agent's GC and orphan reconciliation release the IP when it is back.
      finish(0, '');
    }
    const down = !connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED');
    const code =
      command === 'STATUS'
        ? CniErrorCode.PluginNotAvailable
        : down
          ? CniErrorCode.TryAgainLater
          : CniErrorCode.IOFailure;
    const what = down ? 'is not running (nothing listens on the socket)' : `failed: ${err.message}`;
    fail(
      new CniError(code, `trellis agent at ${socket} ${what}; is the trellis agent running on this node?`),
      cniVersion,
    );
  } catch (e: unknown) {
    if (!(e instanceof Exit)) throw e;
  }
}

function forwardBun(
  bun: BunRuntime,
  socket: string,
  request: WireRequest,
  command: CniCommand,
  cniVersion: string,
): void {
  const chunks: Uint8Array[] = [];
  let connected = false;
  let settled = false;
  const settle = (fn: () => void): void => {
    if (settled) return;
    settled = true;
    fn();
  };
  bun
    .connect({
      unix: socket,
      allowHalfOpen: true,
      socket: {
        data: (_s, data) => void chunks.push(new Uint8Array(data)),
        // The agent closes after its answer; we half-closed after the request.
        close: () => settle(() => answered(Buffer.concat(chunks).toString('utf8'), socket, cniVersion)),
        error: (_s, err) =>
          settle(() => socketFailed(err as NodeJS.ErrnoException, connected, socket, command, cniVersion)),
      },
    })
    .then((conn) => {
      connected = true;
      conn.write(JSON.stringify(request));
      conn.shutdown();
    })
    .catch((err: unknown) =>
      settle(() => socketFailed(err as NodeJS.ErrnoException, connected, socket, command, cniVersion)),
    );
}

function forwardNode(socket: string, request: WireRequest, command: CniCommand, cniVersion: string): void {
  const chunks: Buffer[] = [];
  let connected = false;
  const conn = connect(socket, () => {
    connected = true;
    conn.end(JSON.stringify(request));
  });
  conn.on('data', (c: Buffer) => chunks.push(c));
  conn.on('end', () => answered(Buffer.concat(chunks).toString('utf8'), socket, cniVersion));
  conn.on('error', (err: NodeJS.ErrnoException) => socketFailed(err, connected, socket, command, cniVersion));
}

try {
  main();
} catch (err: unknown) {
  if (!(err instanceof Exit)) {
    process.stdout.write(`${JSON.stringify(CniError.from(err).toJSON(LATEST_VERSION))}\n`);
    process.exit(1);
  }
}
