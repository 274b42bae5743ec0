// The watch cache (src/kube/informer.ts) against the real kube-apiserver: it lists then watches,
// indexes by namespace, node and label, filters server-side by field and label selector, trims
// objects with its transform, survives server-closed streams without replaying or losing events,
// re-lists on 410 reporting what vanished as deletes, and keeps going when a handler throws.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { KubeClient } from '../../src/kube/client.ts';
import { createInformer, indexBy, type Informer } from '../../src/kube/informer.ts';
import { keyOf, type KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { adminClient, eventually, uniqueName } from '../support/kube.ts';
import { WidgetResource } from './fixtures/widget.ts';

const FIXTURES = resolve(fileURLToPath(new URL('./fixtures', import.meta.url)));

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let kube: KubeClient;
const informers: Informer<KubeObject>[] = [];

beforeAll(async () => {
  kube = await adminClient();
  await installCrds(kube, FIXTURES);
});

afterAll(async () => {
  await Promise.all(informers.map((i) => i.stop()));
  await kube.close();
});

async function namespace(): Promise<string> {
  const name = uniqueName('inf');
  await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

function configMap(ns: string, name: string, labels: Record<string, string> = {}, data = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, labels }, data };
}

function pod(ns: string, name: string, node: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: {
      nodeName: node,
      automountServiceAccountToken: false,
      containers: [{ name: 'c', image: 'example.invalid/none' }],
    },
  };
}

function widget(ns: string, name: string): KubeObject {
  return { apiVersion: 'test.trellis.dev/v1', kind: 'Widget', metadata: { name, namespace: ns }, spec: {} };
}

function track<S extends KubeObject>(i: Informer<S>): Informer<S> {
  informers.push(i as unknown as Informer<KubeObject>);
  return i;
}

describe('the watch cache', () => {
  it('lists, then follows adds, updates and deletes in order', async () => {
    const ns = await namespace();
    await kube.create(Builtin.ConfigMap, configMap(ns, 'before'));
    const seen: string[] = [];
    const inf = track(createInformer({ kube, resource: Builtin.ConfigMap, namespace: ns, logger: quiet }));
    inf.on('add', (o) => seen.push(`add ${o.metadata.name}`));
    inf.on('update', (o, old) =>
      seen.push(`update ${o.metadata.name} ${JSON.stringify(old.data)}->${JSON.stringify(o.data)}`),
    );
    inf.on('delete', (o) => seen.push(`delete ${o.metadata.name}`));
    inf.start();
    await inf.synced;
    expect(inf.list().map((o) => o.metadata.name)).toEqual(['before']);
    await kube.create(Builtin.ConfigMap, configMap(ns, 'after'));
    await kube.mergePatch(Builtin.ConfigMap, 'after', { data: { a: '1' } }, ns);
    await kube.delete(Builtin.ConfigMap, 'before', ns);
    await eventually(async () => seen.length >= 4, 'four events');
    expect(seen).toEqual(['add before', 'add after', 'update after undefined->{"a":"1"}', 'delete before']);
    expect(inf.get(keyOf(ns, 'after'))?.data).toEqual({ a: '1' });
    expect(inf.get(keyOf(ns, 'before'))).toBeUndefined();
    expect(inf.stats().lists).toBe(1);
  });

  it('watches only what the field and label selectors select, indexed by node and label', async () => {
    const ns = await namespace();
    const node = uniqueName('node');
    await kube.create(Builtin.Pod, pod(ns, 'mine-web', node, { app: 'web' }));
    await kube.create(Builtin.Pod, pod(ns, 'mine-db', node, { app: 'db' }));
    await kube.create(Builtin.Pod, pod(ns, 'elsewhere', `${node}-other`, { app: 'web' }));
    const inf = track(
      createInformer({
        kube,
        resource: Builtin.Pod,
        namespace: ns,
        fieldSelector: `spec.nodeName=${node}`,
        indexers: { node: indexBy.nodeName, app: indexBy.label('app') },
        logger: quiet,
      }),
    );
    inf.start();
    await inf.synced;
    expect(
      inf
        .byIndex('node', node)
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['mine-db', 'mine-web']);
    expect(inf.byIndex('app', 'web').map((p) => p.metadata.name)).toEqual(['mine-web']);
    // Relabelling moves the object between index values.
    await kube.mergePatch(Builtin.Pod, 'mine-db', { metadata: { labels: { app: 'web' } } }, ns);
    await eventually(async () => inf.byIndex('app', 'web').length === 2, 'mine-db under app=web');
    expect(inf.byIndex('app', 'db')).toEqual([]);
    expect(() => inf.byIndex('zone', 'a')).toThrow('no index "zone" on the pods cache');

    const labelled = track(
      createInformer({ kube, resource: Builtin.Pod, namespace: ns, labelSelector: 'app=web', logger: quiet }),
    );
    labelled.start();
    await labelled.synced;
    expect(
      labelled
        .list()
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['elsewhere', 'mine-db', 'mine-web']);
  });

  it('stores what the transform keeps, and drops managedFields by default', async () => {
    const ns = await namespace();
    await kube.create(Builtin.ConfigMap, configMap(ns, 'big', { keep: 'me' }, { blob: 'x'.repeat(4096) }));
    const plain = track(createInformer({ kube, resource: Builtin.ConfigMap, namespace: ns, logger: quiet }));
    const trimmed = track(
      createInformer({
        kube,
        resource: Builtin.ConfigMap,
        namespace: ns,
        logger: quiet,
        transform: (o) => ({
          apiVersion: o.apiVersion,
          kind: o.kind,
          metadata: { name: o.metadata.name, namespace: o.metadata.namespace, labels: o.metadata.labels },
        }),
      }),
    );
    plain.start();
    trimmed.start();
    await Promise.all([plain.synced, trimmed.synced]);
    const p = plain.get(keyOf(ns, 'big'))!;
    expect(p.metadata.managedFields).toBeUndefined();
    expect((p.data as { blob: string }).blob).toHaveLength(4096);
    expect(trimmed.get(keyOf(ns, 'big'))).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'big', namespace: ns, labels: { keep: 'me' } },
    });
  });

  it('keeps watching across server-closed streams without replaying or losing events', async () => {
    const ns = await namespace();
    const seen: string[] = [];
    await kube.create(Builtin.ConfigMap, configMap(ns, 'before'));
    const inf = track(
      createInformer({
        kube,
        resource: Builtin.ConfigMap,
        namespace: ns,
        logger: quiet,
        watchTimeoutSeconds: 1,
      }),
    );
    inf.on('add', (o) => seen.push(`add ${o.metadata.name}`));
    inf.on('delete', (o) => seen.push(`delete ${o.metadata.name}`));
    inf.start();
    await eventually(async () => inf.stats().watches >= 3, 'two server-closed watch streams');
    await kube.create(Builtin.ConfigMap, configMap(ns, 'after'));
    await eventually(async () => seen.includes('add after'), 'the object created after the reconnects');
    await kube.delete(Builtin.ConfigMap, 'before', ns);
    await eventually(async () => seen.includes('delete before'), 'the deletion');
    expect(seen).toEqual(['add before', 'add after', 'delete before']);
    expect(inf.stats().lists).toBe(1);
  });

  it('re-lists when the resourceVersion it resumes from is gone (410)', async () => {
    const ns = await namespace();
    await kube.create(WidgetResource, widget(ns, 'existing'));
    const seen: string[] = [];
    const inf = track(
      createInformer({
        kube,
        resource: WidgetResource,
        namespace: ns,
        logger: quiet,
        // Older than the Widget CRD, so older than anything its watch cache holds: the answer is 410 Gone.
        resourceVersion: '1',
      }),
    );
    inf.on('add', (o) => seen.push(`add ${o.metadata.name}`));
    inf.start();
    await inf.synced;
    expect(seen).toEqual(['add existing']);
    expect(inf.stats().lists).toBe(1);
    await kube.create(WidgetResource, widget(ns, 'later'));
    await eventually(async () => seen.includes('add later'), 'an object created after the re-list');
    expect(seen).toEqual(['add existing', 'add later']);
  });

  it('replays known objects to late subscribers and survives a throwing handler', async () => {
    const ns = await namespace();
    await kube.create(Builtin.ConfigMap, configMap(ns, 'a'));
    const inf = track(createInformer({ kube, resource: Builtin.ConfigMap, namespace: ns, logger: quiet }));
    inf.on('add', () => {
      throw new Error('handler bug');
    });
    inf.start();
    await inf.synced;
    const late: string[] = [];
    inf.on('add', (o) => late.push(o.metadata.name));
    expect(late).toEqual(['a']);
    await kube.create(Builtin.ConfigMap, configMap(ns, 'b'));
    await eventually(async () => late.includes('b'), 'b despite the throwing handler');
  });

  it('rejects synced when stopped before the first list', async () => {
    const inf = createInformer({ kube, resource: Builtin.ConfigMap, namespace: 'x', logger: quiet });
    await inf.stop();
    await expect(inf.synced).rejects.toThrow('watch of configmaps stopped before it synced');
  });
});
