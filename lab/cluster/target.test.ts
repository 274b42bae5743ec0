import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planLab } from '../state.ts';
import { resolveTarget } from './target.ts';

describe('which cluster a command talks to', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-target-'));
  const file = join(dir, 'kc');
  writeFileSync(file, '{}');
  const lab = planLab({ prefix: 'trl', subnet: '198.18.0', nodes: 1, backend: 'vxlan', stateDir: '/lab' });
  const home = join(dir, 'home');

  it('takes --kubeconfig first, even when a lab is up', () => {
    expect(resolveTarget({ kubeconfig: file }, { KUBECONFIG: '/x' }, lab, home)).toMatchObject({
      kubeconfig: file,
      lab: undefined,
    });
  });

  it('refuses a --kubeconfig that does not exist, naming it', () => {
    expect(() => resolveTarget({ kubeconfig: '/nope' }, {}, lab, home)).toThrow(
      '--kubeconfig /nope does not exist',
    );
  });

  it('then $KUBECONFIG, loaded by the client as kubectl does (several files allowed)', () => {
    expect(resolveTarget({ context: 'prod' }, { KUBECONFIG: '/a:/b' }, lab, home)).toMatchObject({
      kubeconfig: undefined,
      context: 'prod',
      describe: 'KUBECONFIG=/a:/b',
    });
  });

  it("then the lab's kubeconfig when a lab is up", () => {
    expect(resolveTarget({}, {}, lab, home)).toMatchObject({ kubeconfig: lab.kubeconfig, lab });
  });

  it('then ~/.kube/config, and says what to do when there is nothing', () => {
    expect(() => resolveTarget({}, {}, undefined, home)).toThrow(/pass --kubeconfig FILE/);
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), '{}');
    expect(resolveTarget({}, {}, undefined, home).kubeconfig).toBe(join(home, '.kube', 'config'));
  });
});
