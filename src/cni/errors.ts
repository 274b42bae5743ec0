// CNI error codes (spec 1.1, "Error" section) as one const object, and the error class the agent
// throws. A CniError serialises to the spec's error JSON and parses back from it, so it crosses
// the unix socket between agent and shim intact and the runtime sees exactly what the agent said.

export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the plugin is not available (cannot serve ADD). */
  PluginNotAvailable: 50,
  /** STATUS: not available, and existing containers' networking may be limited. */
  PluginNotAvailableLimited: 51,
  /** First code a plugin may use for its own errors (spec: 100 and up). */
  Internal: 999,
} as const;

export type CniErrorCodeValue = (typeof CniErrorCode)[keyof typeof CniErrorCode];

/** The spec's error object, as printed on stdout with a non-zero exit code. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }

  static fromJSON(obj: CniErrorJson): CniError {
    return new CniError(obj.code, obj.msg, obj.details);
  }

  /** Any thrown value as a CniError: unknown failures become code 999 with the original message. */
  static from(err: unknown): CniError {
    if (err instanceof CniError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new CniError(CniErrorCode.Internal, msg);
  }
}

export function isCniErrorJson(v: unknown): v is CniErrorJson {
  return (
    typeof v === 'object' && v !== null && typeof (v as { code?: unknown }).code === 'number' && 'msg' in v
  );
}
