import { describe, expect, it } from 'vitest';
import { openWatches, type AuditEvent } from './audit.ts';

const ev = (auditID: string, stage: string, verb = 'watch', resource = 'pods'): AuditEvent => ({
  auditID,
  stage,
  verb,
  user: { username: 'u' },
  objectRef: { resource },
  requestReceivedTimestamp: '2026-01-01T00:00:00Z',
});

describe('openWatches', () => {
  it('counts watches started and not completed', () => {
    const open = openWatches([
      ev('1', 'ResponseStarted'),
      ev('2', 'ResponseStarted', 'watch', 'namespaces'),
      ev('1', 'ResponseComplete'),
      ev('3', 'ResponseStarted'),
      ev('4', 'ResponseComplete', 'list'),
    ]);
    expect(open.map((e) => e.auditID)).toEqual(['2', '3']);
  });
});
