// The one pending patch of a cycle. Handlers and the framework write into it; the controller sends
// it as a JSON merge patch (metadata and spec on the object, status on the status subresource).
// Setting a key to null deletes it on the server.
export class Patch {
  readonly metadata: { annotations: Record<string, string | null>; labels: Record<string, string | null> } = {
    annotations: {},
    labels: {},
  };
  readonly status: Record<string, unknown> = {};
  readonly spec: Record<string, unknown> = {};
  /** Full replacement list of finalizers, when the cycle changes them. */
  finalizers: string[] | undefined;

  isEmpty(): boolean {
    return !this.hasMain() && !this.hasStatus();
  }

  hasStatus(): boolean {
    return Object.keys(this.status).length > 0;
  }

  hasMain(): boolean {
    return (
      Object.keys(this.metadata.annotations).length > 0 ||
      Object.keys(this.metadata.labels).length > 0 ||
      Object.keys(this.spec).length > 0 ||
      this.finalizers !== undefined
    );
  }

  /**
   * The merge patch for the object itself. When finalizers change, the object's resourceVersion is
   * included as a precondition so a concurrent change to the list is never overwritten.
   */
  mainPatch(resourceVersion?: string): Record<string, unknown> {
    const metadata: Record<string, unknown> = {};
    if (Object.keys(this.metadata.annotations).length)
      metadata.annotations = { ...this.metadata.annotations };
    if (Object.keys(this.metadata.labels).length) metadata.labels = { ...this.metadata.labels };
    if (this.finalizers !== undefined) {
      metadata.finalizers = [...this.finalizers];
      if (resourceVersion) metadata.resourceVersion = resourceVersion;
    }
    const out: Record<string, unknown> = { metadata };
    if (Object.keys(this.spec).length) out.spec = { ...this.spec };
    return out;
  }

  statusPatch(): Record<string, unknown> {
    return { status: { ...this.status } };
  }
}
