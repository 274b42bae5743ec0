// The Helm chart ships the same CRDs as crds/ (charts/trellis/crds is a link to it; a copy must
// stay byte-identical), so `helm install` and `kubectl apply -f crds/` never disagree.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../controlplane/binaries.ts';

describe('charts/trellis/crds', () => {
  it('holds exactly the CRD files of crds/, byte for byte', () => {
    const top = join(REPO_ROOT, 'crds');
    const chart = join(REPO_ROOT, 'charts', 'trellis', 'crds');
    const files = readdirSync(top)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(files).toContain('clusternetwork.yaml');
    expect(
      readdirSync(chart)
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    ).toEqual(files);
    for (const f of files) {
      expect(
        readFileSync(join(chart, f), 'utf8'),
        `charts/trellis/crds/${f} differs from crds/${f}: copy it again`,
      ).toBe(readFileSync(join(top, f), 'utf8'));
    }
  });
});
