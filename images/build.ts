// `make images`: the operator, agent, pause and probe images as OCI archives in dist/images/,
// without Docker or a registry, reproducibly. Each image is a base layer (the pinned Node and the
// libraries it loads; the same bytes in every Node-based image, so a node stores it once) plus
// one layer of its own. Layers are GNU tar with sorted names, mtime 0 and root owners, gzipped
// without a timestamp; see docs/images.md.
// Usage: node images/build.ts [--tag T] [--only agent,...] [--label k=v] [--out DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { load } from 'js-yaml';
import {
  blobOf,
  configBlob,
  fullReference,
  indexJson,
  manifestBlob,
  MEDIA,
  OCI_LAYOUT,
  sha256,
  type Blob,
  type ImageConfig,
  type LayerInfo,
} from './oci.ts';
import { RootFs } from './rootfs.ts';
import { withoutCheckoutPath } from './reproducible.ts';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DEFAULT_OUT = join(REPO, 'dist', 'images');
const WORK = join(REPO, '.cache', 'images');
const NODE = join(REPO, 'node_modules', 'node', 'bin', 'node');
const BUN = join(REPO, 'node_modules', '.bin', 'bun');
const LIB = '/opt/trellis/lib';
const NONROOT = '65532';

export const IMAGE_NAMES = ['operator', 'agent', 'pause', 'probe'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

/** The chart's appVersion: the default tag of every image, as the chart's values expect. */
export function chartAppVersion(): string {
  const chart = load(readFileSync(join(REPO, 'charts', 'trellis', 'Chart.yaml'), 'utf8')) as {
    appVersion?: string;
  };
  return String(chart.appVersion ?? '0.0.0');
}

function tarDir(dir: string): Buffer {
  return execFileSync(
    'tar',
    [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-C',
      dir,
      '-cf',
      '-',
      '.',
    ],
    { maxBuffer: 1 << 30 },
  );
}

function layer(root: RootFs): LayerInfo {
  const tar = tarDir(root.dir);
  return { blob: blobOf(MEDIA.layer, gzipSync(tar, { level: 6 })), diffId: sha256(tar) };
}

function compileC(source: string, out: string): string {
  const res = spawnSync('gcc', ['-static', '-Os', '-s', '-o', out, join(REPO, 'images', source)], {
    encoding: 'utf8',
  });
  if (res.error || res.status !== 0)
    throw new Error(
      `compiling images/${source} failed (needs gcc and libc6-dev: apt-get install gcc libc6-dev): ${res.stderr ?? res.error}`,
    );
  return out;
}

function bundle(entry: string, out: string): string {
  execFileSync(BUN, ['build', '--target=node', '--format=esm', '--minify', '--outfile', out, entry], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Bun writes each CommonJS module's __dirname as an absolute path of this checkout (pino's and
  // thread-stream's folders): the same source in another folder gave other bytes and digests.
  // Those folders do not exist in the image either way, so name them under the image's lib.
  writeFileSync(out, withoutCheckoutPath(readFileSync(out, 'utf8'), REPO, LIB));
  return out;
}

/** Node and the libraries it loads, plus the few files every image has. */
function baseLayer(): LayerInfo {
  const root = new RootFs(join(WORK, 'base'));
  root.binary(NODE, '/usr/local/bin/node');
  root
    .write(
      '/etc/passwd',
      `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}::/home/nonroot:/sbin/nologin\n`,
    )
    .write('/etc/group', `root:x:0:\nnonroot:x:${NONROOT}:\n`)
    .directory('/tmp', 0o1777)
    .directory('/run')
    .link('/var/run', '../run');
  return layer(root);
}

function templates(root: RootFs): void {
  const dir = join(REPO, 'src', 'render', 'templates');
  for (const f of readdirSync(dir).sort()) root.copy(join(dir, f), `${LIB}/templates/${f}`, 0o644);
}

function launcher(root: RootFs, names: string[]): void {
  const bin = compileC('launcher.c', join(WORK, 'launcher'));
  for (const n of names) root.copy(bin, `/usr/local/bin/trellis-${n}`, 0o755);
}

function operatorLayer(): LayerInfo {
  const root = new RootFs(join(WORK, 'operator'));
  launcher(root, ['operator', 'uninstall']);
  root.copy(bundle('operator/main.ts', join(WORK, 'operator.mjs')), `${LIB}/operator.mjs`, 0o644);
  // the chart's pre-delete hook (charts/trellis/templates/uninstall-hook.yaml)
  root.copy(bundle('operator/uninstall.ts', join(WORK, 'uninstall.mjs')), `${LIB}/uninstall.mjs`, 0o644);
  templates(root);
  // src/kube/crds.ts finds the CRDs at ../../crds from the bundle.
  const crds = join(REPO, 'crds');
  for (const f of readdirSync(crds).sort()) root.copy(join(crds, f), `/opt/crds/${f}`, 0o644);
  return layer(root);
}

function agentLayer(): LayerInfo {
  const plugin = join(REPO, 'dist', 'trellis-cni');
  try {
    statSync(plugin);
  } catch {
    throw new Error(`${plugin} is missing: run bash hack/build-cni.sh first (make images does)`);
  }
  const root = new RootFs(join(WORK, 'agent'));
  launcher(root, ['agent']);
  root.copy(bundle('agent/main.ts', join(WORK, 'agent.mjs')), `${LIB}/agent.mjs`, 0o644);
  // the agent starts its data-plane spawner from a file beside its bundle (src/dataplane/spawner.ts)
  root.copy(
    bundle('src/dataplane/spawner-child.ts', join(WORK, 'spawner-child.mjs')),
    `${LIB}/spawner-child.mjs`,
    0o644,
  );
  templates(root);
  root.copy(plugin, '/opt/trellis/bin/trellis-cni', 0o755);
  // What the agent runs, through the data-plane spawner's argv (no shell in the image): ip/bridge,
  // nft, nsenter/unshare.
  root.fromPackage(
    'iproute2',
    (f) => ['/bin/ip', '/sbin/bridge'].includes(f) || f.startsWith('/etc/iproute2/'),
  );
  root.fromPackage('nftables', (f) => f === '/usr/sbin/nft');
  root.fromPackage('util-linux', (f) => ['/usr/bin/nsenter', '/usr/bin/unshare'].includes(f));
  return layer(root);
}

function probeLayer(): LayerInfo {
  const root = new RootFs(join(WORK, 'probe'));
  launcher(root, ['probe', 'prober']);
  root.copy(bundle('lab/probe.ts', join(WORK, 'probe.mjs')), `${LIB}/probe.mjs`, 0o644);
  root.copy(bundle('lab/prober.ts', join(WORK, 'prober.mjs')), `${LIB}/prober.mjs`, 0o644);
  root.fromPackage('iputils-ping', (f) => f === '/bin/ping');
  return layer(root);
}

function pauseLayer(): LayerInfo {
  const root = new RootFs(join(WORK, 'pause-root'));
  root.copy(compileC('pause.c', join(WORK, 'pause')), '/pause', 0o755);
  return layer(root);
}

export interface BuiltImage {
  name: ImageName;
  reference: string;
  archive: string;
  digest: string;
  archiveSha256: string;
  bytes: number;
}

function writeArchive(
  out: string,
  name: string,
  reference: string,
  config: Blob,
  layers: LayerInfo[],
): BuiltImage {
  const manifest = manifestBlob(config, layers);
  const layout = join(WORK, `layout-${name}`);
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  for (const b of [config, manifest, ...layers.map((l) => l.blob)]) {
    writeFileSync(join(layout, 'blobs', 'sha256', b.descriptor.digest.slice('sha256:'.length)), b.bytes, {
      mode: 0o644,
    });
  }
  writeFileSync(join(layout, 'index.json'), indexJson(manifest, reference), { mode: 0o644 });
  writeFileSync(join(layout, 'oci-layout'), OCI_LAYOUT, { mode: 0o644 });
  const archive = join(out, `${name}.oci.tar`);
  const tar = tarDir(layout);
  writeFileSync(archive, tar);
  rmSync(layout, { recursive: true, force: true });
  return {
    name: name as ImageName,
    reference,
    archive,
    digest: manifest.descriptor.digest,
    archiveSha256: sha256(tar),
    bytes: tar.length,
  };
}

export function buildImages(opts: {
  tag: string;
  only?: ImageName[];
  labels?: Record<string, string>;
  out?: string;
}): BuiltImage[] {
  const out = opts.out ?? DEFAULT_OUT;
  mkdirSync(out, { recursive: true });
  mkdirSync(WORK, { recursive: true });
  const wanted = opts.only ?? [...IMAGE_NAMES];
  const nodeBased = wanted.some((n) => n !== 'pause');
  const base = nodeBased ? baseLayer() : undefined;
  const labels = opts.labels && Object.keys(opts.labels).length ? opts.labels : undefined;
  const defs: Record<ImageName, () => { layers: LayerInfo[]; config: ImageConfig }> = {
    operator: () => ({
      layers: [base!, operatorLayer()],
      config: { entrypoint: ['/usr/local/bin/trellis-operator'], user: NONROOT },
    }),
    agent: () => ({
      layers: [base!, agentLayer()],
      config: { entrypoint: ['/usr/local/bin/trellis-agent'] },
    }),
    probe: () => ({
      layers: [base!, probeLayer()],
      config: { entrypoint: ['/usr/local/bin/trellis-probe'] },
    }),
    pause: () => ({ layers: [pauseLayer()], config: { entrypoint: ['/pause'], user: NONROOT } }),
  };
  const built: BuiltImage[] = [];
  for (const name of wanted) {
    const { layers, config } = defs[name]();
    const cfg = configBlob(layers, { ...config, ...(labels ? { labels } : {}) });
    built.push(writeArchive(out, name, fullReference(`trellis/${name}:${opts.tag}`), cfg, layers));
  }
  writeFileSync(join(out, 'images.json'), JSON.stringify(built, null, 2) + '\n');
  return built;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tag: { type: 'string' },
      only: { type: 'string' },
      label: { type: 'string', multiple: true },
      out: { type: 'string' },
    },
  });
  const only = values.only?.split(',').map((s) => s.trim());
  for (const n of only ?? []) {
    if (!(IMAGE_NAMES as readonly string[]).includes(n))
      throw new Error(`--only: unknown image "${n}"; choose from ${IMAGE_NAMES.join(', ')}`);
  }
  const labels: Record<string, string> = {};
  for (const l of values.label ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw new Error(`--label ${l}: expected key=value`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  const images = buildImages({
    tag: values.tag ?? chartAppVersion(),
    only: only as ImageName[] | undefined,
    labels,
    out: values.out ? resolve(values.out) : undefined,
  });
  for (const i of images) {
    process.stdout.write(
      `${i.reference.padEnd(36)} ${(i.bytes / 1048576).toFixed(1).padStart(6)} MiB  ${i.digest}  ${relative(process.cwd(), i.archive)}\n`,
    );
  }
}
