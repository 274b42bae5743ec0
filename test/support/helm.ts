// The helm binary the chart tests run. `make setup` builds it into the cache (hack/build-tools.sh),
// so a missing helm is a set-up error to fix, never a reason to skip a test.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/controlplane/binaries.ts';

export function helmBinary(): string {
  const candidates = [process.env.TRELLIS_HELM, join(cacheDir(), 'bin', 'helm')];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error(
    `no helm binary at ${candidates.filter(Boolean).join(' or ')}: run \`make setup\` (hack/build-tools.sh builds it)`,
  );
}
