// A small typed REST client for the Kubernetes API. Authentication comes from a kubeconfig
// (kubeconfig.ts); requests go through one pooled undici Agent. We use our own thin
// layer because we need server-side apply, JSON patch with resourceVersion preconditions, and
// watches with bookmarks as plain values, and the generated clients hide all three.
import { Agent, request } from 'undici';
import { ApiError } from './errors.ts';
import { loadKubeAuth } from './kubeconfig.ts';
import type { KubeList, KubeObject, WatchEvent } from './object.ts';
import { collectionPath, objectPath, type Resource } from './resource.ts';

/** Our field manager for server-side apply; every object Trellis applies is owned under it. */
export const DEFAULT_FIELD_MANAGER = 'trellis';

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  limit?: number;
  continue?: string;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

export interface ApplyOptions {
  fieldManager?: string;
  force?: boolean;
  dryRun?: boolean;
}

export type JsonPatchOp =
  { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

/** Deadline for the headers, and between body chunks, of one non-watch API request. */
export const REQUEST_TIMEOUT_MS = 30_000;

export class KubeClient {
  readonly server: string;
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;

  private constructor(server: string, agent: Agent, headers: Record<string, string>) {
    this.server = server.replace(/\/$/, '');
    this.agent = agent;
    this.headers = headers;
  }

  /** Loads a kubeconfig file (or the in-cluster/default config when no path is given). */
  static async fromKubeconfig(path?: string, context?: string): Promise<KubeClient> {
    const auth = await loadKubeAuth(path, context);
    const agent = new Agent({
      connect: {
        ...(auth.ca && { ca: auth.ca }),
        ...(auth.cert && { cert: auth.cert }),
        ...(auth.key && { key: auth.key }),
        rejectUnauthorized: !auth.skipTLSVerify,
      },
      keepAliveTimeout: 30_000,
      connectTimeout: 5_000,
      connections: 64,
    });
    return new KubeClient(auth.server, agent, auth.headers);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** A raw request; returns the parsed JSON body or throws ApiError on a non-2xx answer. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    query?: Record<string, string | number | boolean | undefined>,
  ): Promise<T> {
    const url = this.server + path + toQuery(query);
    const res = await request(url, {
      method: method as 'GET',
      dispatcher: this.agent,
      // Short, so a stalled API server is an error a caller can act on (CNI: code 11), not a
      // 300 s wait; watches set their own.
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
      headers: {
        ...this.headers,
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': contentType } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    const parsed: unknown = text ? safeJson(text) : undefined;
    if (res.statusCode >= 300) throw new ApiError(res.statusCode, method, path, parsed);
    return parsed as T;
  }

  get<T extends KubeObject>(r: Resource, name: string, namespace?: string): Promise<T> {
    return this.request<T>('GET', objectPath(r, name, namespace));
  }

  /** GET that answers undefined on 404 instead of throwing. */
  async getOrUndefined<T extends KubeObject>(
    r: Resource,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(r, name, namespace);
    } catch (err: unknown) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  list<T extends KubeObject>(r: Resource, namespace?: string, opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', collectionPath(r, namespace), undefined, undefined, { ...opts });
  }

  /** Lists every page and returns all items with the list's final resourceVersion. */
  async listAll<T extends KubeObject>(
    r: Resource,
    namespace?: string,
    opts: ListOptions = {},
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.list<T>(r, namespace, { ...opts, limit: 500, continue: cont });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion: rv }, items };
  }

  create<T extends KubeObject>(r: Resource, obj: KubeObject, opts: { dryRun?: boolean } = {}): Promise<T> {
    return this.request<T>('POST', collectionPath(r, obj.metadata.namespace), obj, undefined, {
      dryRun: opts.dryRun ? 'All' : undefined,
    });
  }

  /** PUT; the object's metadata.resourceVersion is the optimistic-concurrency precondition. */
  replace<T extends KubeObject>(r: Resource, obj: KubeObject, subresource?: 'status'): Promise<T> {
    const path =
      objectPath(r, obj.metadata.name, obj.metadata.namespace) + (subresource ? `/${subresource}` : '');
    return this.request<T>('PUT', path, obj);
  }

  /** Server-side apply with our field manager. */
  apply<T extends KubeObject>(
    r: Resource,
    obj: KubeObject,
    opts: ApplyOptions = {},
    subresource?: 'status',
  ): Promise<T> {
    const path =
      objectPath(r, obj.metadata.name, obj.metadata.namespace) + (subresource ? `/${subresource}` : '');
    return this.request<T>('PATCH', path, obj, 'application/apply-patch+yaml', {
      fieldManager: opts.fieldManager ?? DEFAULT_FIELD_MANAGER,
      force: opts.force ?? true,
      dryRun: opts.dryRun ? 'All' : undefined,
    });
  }

  jsonPatch<T extends KubeObject>(
    r: Resource,
    name: string,
    ops: JsonPatchOp[],
    namespace?: string,
    subresource?: 'status',
  ): Promise<T> {
    const path = objectPath(r, name, namespace) + (subresource ? `/${subresource}` : '');
    return this.request<T>('PATCH', path, ops, 'application/json-patch+json');
  }

  mergePatch<T extends KubeObject>(
    r: Resource,
    name: string,
    patch: unknown,
    namespace?: string,
    subresource?: 'status',
  ): Promise<T> {
    const path = objectPath(r, name, namespace) + (subresource ? `/${subresource}` : '');
    return this.request<T>('PATCH', path, patch, 'application/merge-patch+json');
  }

  /** DELETE; true when something was deleted, false when it was already gone. */
  async delete(
    r: Resource,
    name: string,
    namespace?: string,
    opts: { resourceVersion?: string; propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' } = {},
  ): Promise<boolean> {
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.resourceVersion) body.preconditions = { resourceVersion: opts.resourceVersion };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    try {
      await this.request('DELETE', objectPath(r, name, namespace), body);
      return true;
    } catch (err: unknown) {
      if (err instanceof ApiError && err.code === 404) return false;
      throw err;
    }
  }

  /**
   * One watch connection as an async iterator of events. Ends when the server closes the stream
   * (timeout) or the signal aborts. An ERROR event (e.g. 410 Gone) is yielded, not thrown, so the
   * caller decides whether to re-list; see src/framework/watcher.ts for the loop that does.
   */
  async *watch<T extends KubeObject>(
    r: Resource,
    namespace: string | undefined,
    opts: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>> {
    const { signal, ...query } = opts;
    const path = collectionPath(r, namespace);
    const res = await request(this.server + path + toQuery({ ...query, watch: true }), {
      method: 'GET',
      dispatcher: this.agent,
      headers: { ...this.headers, accept: 'application/json' },
      signal,
    });
    if (res.statusCode >= 300) {
      const text = await res.body.text();
      throw new ApiError(res.statusCode, 'WATCH', path, safeJson(text));
    }
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as WatchEvent<T>;
        }
      }
    } catch (err: unknown) {
      if (signal?.aborted) return;
      throw err;
    } finally {
      res.body.destroy();
    }
  }
}

function toQuery(q?: Record<string, string | number | boolean | undefined>): string {
  if (!q) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
