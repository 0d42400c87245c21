/**
 * A size-bounded map for per-isolate memos, least recently used out first: a hit moves the entry
 * to the end (Map keeps insertion order), and when full the first entry goes. So a hot entry (an
 * access window in use) survives a stream of one-off ones (fresh payments); with insertion order
 * alone the benchmark saw it evicted and re-read from KV by every concurrent request.
 */
export class BoundedMap<K, V> {
  private readonly entries = new Map<K, V>();
  private readonly maxEntries: number;

  // No parameter property: Node's type stripping (bench scripts) runs this file as it is.
  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
  }

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    if (!this.entries.has(key) && this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, value);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
