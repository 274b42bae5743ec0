// A per-key async mutex: calls with the same key run one at a time, in arrival order; keys with
// no waiter are forgotten. The IPAM allocator serialises its own writes to a block with it (so its
// 409s only come from other nodes); the operator serialises a ClusterNetwork's reconcile, drift
// repairs and cleanup (so a repair never re-creates what cleanup just deleted).
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
