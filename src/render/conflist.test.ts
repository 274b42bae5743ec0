// The rendered cniVersion must be one the host's reference plugins accept: a runtime hands the
// conflist's version to every plugin of the chain (portmap after ours) and to NAD delegates.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFLIST_CNI_VERSION } from './conflist.ts';
import { renderData } from './templates.ts';

const CNI_DIR = '/usr/lib/cni';
const plugins = ['portmap', 'macvlan', 'bridge', 'vlan', 'host-device'].filter((p) =>
  existsSync(`${CNI_DIR}/${p}`),
);

describe('the rendered cniVersion', () => {
  it.skipIf(plugins.length === 0)(
    `is accepted by the reference plugins in ${CNI_DIR} (${plugins.join(', ')})`,
    () => {
      for (const p of plugins) {
        const out = execFileSync(`${CNI_DIR}/${p}`, [], {
          env: { CNI_COMMAND: 'VERSION' },
          input: JSON.stringify({ cniVersion: CONFLIST_CNI_VERSION }),
          encoding: 'utf8',
        });
        expect((JSON.parse(out) as { supportedVersions: string[] }).supportedVersions, p).toContain(
          CONFLIST_CNI_VERSION,
        );
      }
    },
  );
});

describe('templates', () => {
  it('refuse to render a missing value instead of printing an empty one', () => {
    expect(() => renderData('nad.yaml', { name: 'x', namespace: 'default', labels: {} })).toThrow(
      /template value is undefined/,
    );
  });
});
