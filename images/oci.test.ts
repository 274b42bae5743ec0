import { describe, expect, it } from 'vitest';
import {
  blobOf,
  canonicalJson,
  configBlob,
  fullReference,
  indexJson,
  manifestBlob,
  MEDIA,
  sha256,
} from './oci.ts';

describe('OCI layout values', () => {
  const layer = { blob: blobOf(MEDIA.layer, Buffer.from('gz')), diffId: sha256('tar') };

  it('names short references the way a kubelet resolves them', () => {
    expect(fullReference('trellis/agent:0.1.0')).toBe('docker.io/trellis/agent:0.1.0');
    expect(fullReference('pause')).toBe('docker.io/library/pause:latest');
    expect(fullReference('localhost:5000/x/y:1')).toBe('localhost:5000/x/y:1');
    expect(fullReference('registry.k8s.io/pause:3.10')).toBe('registry.k8s.io/pause:3.10');
  });

  it('writes canonical JSON whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 2 } }).toString()).toBe(
      '{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  it('puts the uncompressed digests in the config and the stored ones in the manifest', () => {
    const config = configBlob([layer], { entrypoint: ['/pause'], user: '65532' });
    const parsed = JSON.parse(config.bytes.toString()) as {
      rootfs: { diff_ids: string[] };
      config: { Entrypoint: string[]; User: string };
    };
    expect(parsed.rootfs.diff_ids).toEqual([sha256('tar')]);
    expect(parsed.config).toMatchObject({ Entrypoint: ['/pause'], User: '65532' });
    const manifest = JSON.parse(manifestBlob(config, [layer]).bytes.toString()) as {
      config: { digest: string };
      layers: { digest: string; size: number }[];
    };
    expect(manifest.config.digest).toBe(config.descriptor.digest);
    expect(manifest.layers).toEqual([{ mediaType: MEDIA.layer, digest: sha256('gz'), size: 2 }]);
  });

  it('gives the same manifest digest for the same inputs and another for another entrypoint', () => {
    const a = manifestBlob(configBlob([layer], { entrypoint: ['/a'] }), [layer]);
    const b = manifestBlob(configBlob([layer], { entrypoint: ['/a'] }), [layer]);
    const c = manifestBlob(configBlob([layer], { entrypoint: ['/b'] }), [layer]);
    expect(a.descriptor.digest).toBe(b.descriptor.digest);
    expect(c.descriptor.digest).not.toBe(a.descriptor.digest);
  });

  it('names the image in index.json for containerd and for OCI tools', () => {
    const m = blobOf(MEDIA.manifest, Buffer.from('{}'));
    const index = JSON.parse(indexJson(m, 'docker.io/trellis/agent:0.1.0').toString()) as {
      manifests: { annotations: Record<string, string>; digest: string }[];
    };
    expect(index.manifests[0]?.digest).toBe(m.descriptor.digest);
    expect(index.manifests[0]?.annotations).toEqual({
      'io.containerd.image.name': 'docker.io/trellis/agent:0.1.0',
      'org.opencontainers.image.ref.name': '0.1.0',
    });
  });
});
