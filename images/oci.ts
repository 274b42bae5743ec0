// The OCI image layout, written directly: blobs named by their sha256, a config whose diff_ids
// are the uncompressed layer digests, a manifest, index.json and oci-layout. Nothing here holds a
// timestamp or a host-specific value, so the same layers give the same manifest digest.
// Pure functions: the I/O (tar, gzip, files) is in build.ts.
import { createHash } from 'node:crypto';

export const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface LayerInfo {
  /** The gzipped layer as stored. */
  blob: Blob;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
}

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  user?: string;
  workingDir?: string;
  labels?: Record<string, string>;
}

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function blobOf(mediaType: string, bytes: Buffer): Blob {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

/** Canonical JSON (sorted keys, no spaces): the bytes, and so the digest, depend only on content. */
export function canonicalJson(value: unknown): Buffer {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return Buffer.from(JSON.stringify(sort(value)));
}

export function configBlob(layers: LayerInfo[], cfg: ImageConfig): Blob {
  const config: Record<string, unknown> = {};
  if (cfg.entrypoint) config.Entrypoint = cfg.entrypoint;
  if (cfg.cmd) config.Cmd = cfg.cmd;
  config.Env = cfg.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  if (cfg.user) config.User = cfg.user;
  config.WorkingDir = cfg.workingDir ?? '/';
  if (cfg.labels) config.Labels = cfg.labels;
  return blobOf(
    MEDIA.config,
    canonicalJson({
      architecture: 'amd64',
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
}

export function manifestBlob(config: Blob, layers: LayerInfo[]): Blob {
  return blobOf(
    MEDIA.manifest,
    canonicalJson({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: config.descriptor,
      layers: layers.map((l) => l.blob.descriptor),
    }),
  );
}

/**
 * index.json naming the image. `ref` is a full reference (docker.io/trellis/agent:0.1.0):
 * containerd's import reads io.containerd.image.name, other tools the OCI ref.name (the tag).
 */
export function indexJson(manifest: Blob, ref: string): Buffer {
  const tag = ref.slice(ref.lastIndexOf(':') + 1);
  return canonicalJson({
    schemaVersion: 2,
    manifests: [
      {
        ...manifest.descriptor,
        annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
      },
    ],
  });
}

export const OCI_LAYOUT = canonicalJson({ imageLayoutVersion: '1.0.0' });

/** The name a kubelet resolves `trellis/agent:0.1.0` to. */
export function fullReference(image: string): string {
  const firstPart = image.split('/')[0] ?? '';
  const hasRegistry = image.includes('/') && /[.:]|^localhost$/.test(firstPart);
  const withRegistry = hasRegistry ? image : `docker.io/${image.includes('/') ? image : `library/${image}`}`;
  return /:[^/]+$/.test(withRegistry) || withRegistry.includes('@') ? withRegistry : `${withRegistry}:latest`;
}
