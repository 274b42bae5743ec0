// The API server's audit log, for tests and benchmarks that count what a client asks of it (which
// watches an agent holds open, how many requests an operator makes). Metadata level only: no
// request or response bodies are written, so the log stays small and holds no secrets.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One audit event as the JSON log writes it (the fields we read). */
export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user: { username: string };
  sourceIPs?: string[];
  objectRef?: { resource?: string; subresource?: string; namespace?: string };
  requestURI?: string;
  requestReceivedTimestamp: string;
}

/**
 * Writes an audit policy into `dir`, removes the log of an earlier server, and returns the
 * kube-apiserver flags that use them.
 * @param verbs only these verbs are logged. @default every verb
 */
export function auditFlags(dir: string, verbs?: string[]): { args: string[]; log: string } {
  const policy = join(dir, 'audit-policy.yaml');
  const log = join(dir, 'audit.log');
  // a new API server starts a new log: a killed server's watches never logged their completion
  rmSync(log, { force: true });
  const rule = verbs
    ? `- level: Metadata\n  verbs: ${JSON.stringify(verbs)}\n- level: None\n`
    : '- level: Metadata\n';
  writeFileSync(
    policy,
    `apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived"]\nrules:\n${rule}`,
  );
  return {
    args: [`--audit-policy-file=${policy}`, `--audit-log-path=${log}`, '--audit-log-format=json'],
    log,
  };
}

/** Every event of an audit log (none when the log does not exist yet). */
export function readAudit(file: string): AuditEvent[] {
  if (!existsSync(file)) return [];
  const out: AuditEvent[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n'))
    if (line.trim()) out.push(JSON.parse(line) as AuditEvent);
  return out;
}

/** Watch requests that have started and not completed: the watch connections open now. */
export function openWatches(events: AuditEvent[]): AuditEvent[] {
  const open = new Map<string, AuditEvent>();
  for (const ev of events) {
    if (ev.verb !== 'watch') continue;
    if (ev.stage === 'ResponseStarted') open.set(ev.auditID, ev);
    else if (ev.stage === 'ResponseComplete' || ev.stage === 'Panic') open.delete(ev.auditID);
  }
  return [...open.values()];
}
