// The CNI spec versions Trellis speaks and the result conversion between them. We answer in the
// configuration's cniVersion so chained plugins that stop at 1.0.0 (Debian's portmap) get a
// prevResult they can parse.
import { CniError, CniErrorCode } from './errors.ts';
import type { CniResult } from './types.ts';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST_VERSION = '1.1.0';

export function isSupportedVersion(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Throws the spec's code 1 when a config asks for a version we do not speak. */
export function assertSupportedVersion(v: unknown): string {
  if (v === undefined || v === '') {
    throw new CniError(
      CniErrorCode.InvalidConfig,
      'network configuration has no cniVersion; set "cniVersion": "1.0.0"',
    );
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `incompatible CNI version ${JSON.stringify(v)}: trellis supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return v;
}

/** Converts a 1.x result to the shape of `version` (adds ips[].version before 1.0.0). */
export function convertResult(result: CniResult, version: string): CniResult {
  const out: CniResult = { ...result, cniVersion: version };
  if (version.startsWith('0.')) {
    out.ips = result.ips?.map((ip) => ({ ...ip, version: ip.address.includes(':') ? '6' : '4' }));
    out.interfaces = result.interfaces?.map(({ mtu: _mtu, ...rest }) => rest);
  } else if (version === '1.0.0') {
    out.interfaces = result.interfaces?.map(({ mtu: _mtu, ...rest }) => rest);
  }
  return out;
}
