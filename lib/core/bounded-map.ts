// A Map with a cap, for every cache an unauthenticated request can fill: one piece of code for
// the bound, instead of one per cache.

/**
 * A Map holding at most `maxEntries`. `set` moves the key to the end, the newest place; when the
 * map is full, the entry at the front (set longest ago) goes. A cache that counts use as recency
 * sets an entry again when it serves it.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly maxEntries: number) {
    super();
  }

  override set(key: K, value: V): this {
    this.delete(key);
    if (this.size >= this.maxEntries) this.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}
