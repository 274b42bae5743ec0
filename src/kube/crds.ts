// Installs CustomResourceDefinitions from YAML files (crds/ by default) with server-side apply
// and waits until each is Established, so callers can create objects right after.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadAll } from 'js-yaml';
import type { KubeClient } from './client.ts';
import { isApiError } from './errors.ts';
import type { KubeObject } from './object.ts';
import { Builtin } from './resource.ts';

export const CRD_DIR = resolve(fileURLToPath(new URL('../../crds', import.meta.url)));

/** Every object in every .yaml file of a folder, in file-name order. */
export function loadYamlObjects(dir: string): KubeObject[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
  return files.flatMap((f) => loadAll(readFileSync(join(dir, f), 'utf8')).filter(Boolean) as KubeObject[]);
}

export async function installCrds(kube: KubeClient, dir = CRD_DIR, timeoutMs = 30_000): Promise<string[]> {
  const crds = loadYamlObjects(dir).filter((o) => o.kind === 'CustomResourceDefinition');
  for (const crd of crds) await kube.apply(Builtin.CustomResourceDefinition, crd);
  for (const crd of crds) {
    await waitEstablished(kube, crd.metadata.name, timeoutMs);
    await waitServing(kube, crd, timeoutMs);
  }
  return crds.map((c) => c.metadata.name);
}

interface CrdSpec {
  group: string;
  names: { plural: string };
  versions: { name: string; served: boolean; storage: boolean }[];
}

/**
 * A CRD just Established (or updated) may still answer 429 "storage is (re)initializing" while its
 * watch cache fills; waiting here means every caller can list and write right after installing.
 */
async function waitServing(kube: KubeClient, crd: KubeObject, timeoutMs: number): Promise<void> {
  const spec = crd.spec as CrdSpec;
  const version = spec.versions.find((v) => v.storage)?.name ?? spec.versions[0]!.name;
  const path = `/apis/${spec.group}/${version}/${spec.names.plural}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await kube.request('GET', path, undefined, undefined, { limit: 1 });
      return;
    } catch (err: unknown) {
      if (!isApiError(err, 429) || Date.now() > deadline) throw err;
    }
    await sleep(100);
  }
}

export async function waitEstablished(kube: KubeClient, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const crd = await kube.get<KubeObject<unknown, { conditions?: { type: string; status: string }[] }>>(
      Builtin.CustomResourceDefinition,
      name,
    );
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await sleep(100);
  }
  throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
}
