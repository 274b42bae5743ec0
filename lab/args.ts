// A small argv parser for the trellis CLI: --flag value, --flag=value, boolean flags, repeatable
// flags, and everything after `--` kept verbatim (for `lab exec`). Unknown flags are errors that
// name the flag, so a typo never silently does something else.
import { NETWORKS_ANNOTATION, parseNetworksAnnotation } from '../src/multinet/annotation.ts';
import { UserError } from './state.ts';

export type FlagKind = 'string' | 'boolean' | 'multi';

export interface Parsed {
  positionals: string[];
  strings: Record<string, string>;
  booleans: Record<string, boolean>;
  multi: Record<string, string[]>;
  rest: string[];
}

export function parseArgv(argv: string[], flags: Record<string, FlagKind>): Parsed {
  const out: Parsed = { positionals: [], strings: {}, booleans: {}, multi: {}, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.rest = argv.slice(i + 1);
      break;
    }
    if (!a.startsWith('--') || a === '-') {
      out.positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const kind = flags[name];
    if (!kind) {
      const known = Object.keys(flags).map((f) => `--${f}`);
      throw new UserError(
        `unknown flag --${name}${known.length ? ` (this command takes ${known.join(', ')})` : ''}`,
      );
    }
    if (kind === 'boolean') {
      if (eq >= 0) throw new UserError(`--${name} takes no value`);
      out.booleans[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (eq < 0 && value.startsWith('--')))
      throw new UserError(`--${name} needs a value`);
    if (kind === 'multi') (out.multi[name] ??= []).push(value);
    else out.strings[name] = value;
  }
  return out;
}

/** k=v pairs from repeatable --label/--annotation flags. */
export function keyValues(items: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UserError(`--${flag} "${item}" must look like key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function intFlag(p: Parsed, name: string, fallback?: number): number | undefined {
  const v = p.strings[name];
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw new UserError(`--${name} must be a whole number, got "${v}"`);
  return Number(v);
}

/**
 * `--networks SPEC` as the NPWG annotation, checked here so a typo is a CLI error rather than a
 * pod that never starts.
 */
export function withNetworks(
  annotations: Record<string, string>,
  spec: string | undefined,
): Record<string, string> {
  if (spec === undefined) return annotations;
  try {
    parseNetworksAnnotation(spec);
  } catch (err: unknown) {
    throw new UserError(`--networks: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { ...annotations, [NETWORKS_ANNOTATION]: spec };
}
