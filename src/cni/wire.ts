// The protocol between the shim and the agent on the unix socket, kept tiny so the shim needs no
// library: the shim writes one JSON request and half-closes; the agent answers with one status
// line ("0" or "1": the shim's exit code) followed by the exact text the shim prints on stdout.
import type { CniEnv, NetConf } from './types.ts';

export interface WireRequest {
  env: CniEnv;
  /** The configuration exactly as read from stdin (parsed). */
  config: NetConf;
  /** 'plugin' for the main type, 'ipam' when invoked as an attachment's IPAM plugin. */
  mode: 'plugin' | 'ipam';
  /** How long the plugin will wait for the answer; the agent gives up (and rolls back) sooner. */
  timeoutMs?: number;
}

export interface WireAnswer {
  exitCode: 0 | 1;
  stdout: string;
}

export function encodeAnswer(a: WireAnswer): string {
  return `${a.exitCode}\n${a.stdout}`;
}

export function decodeAnswer(text: string): WireAnswer {
  const nl = text.indexOf('\n');
  const head = nl < 0 ? text : text.slice(0, nl);
  if (head !== '0' && head !== '1')
    throw new Error(`malformed agent answer: ${JSON.stringify(text.slice(0, 80))}`);
  return { exitCode: head === '0' ? 0 : 1, stdout: nl < 0 ? '' : text.slice(nl + 1) };
}
