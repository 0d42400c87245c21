/**
 * Finds repeated route ids while a table compiles. Pure.
 *
 * A `Set<string>` of 100k ids was the largest single cost of compiling a 100k-route table (about
 * 30 ms of ~200 in `npm run bench:matcher`): V8 grows its hash table step by step and every insert
 * misses the cache. This is an open-addressing table of route indexes, sized once for the whole
 * document in one typed array, so it allocates nothing per route and holds no strings.
 */
export class IdIndex {
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly ids: (i: number) => string;

  /** `ids(i)` is the id of route `i`; at most `capacity` routes are added. */
  constructor(capacity: number, ids: (i: number) => string) {
    this.ids = ids;
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
  }

  /** Records route `i`; returns the index of an earlier route with the same id, else -1. */
  add(i: number): number {
    const slot = this.find(this.ids(i));
    const held = this.slots[slot] as number;
    if (held !== 0) return held - 1;
    this.slots[slot] = i + 1;
    return -1;
  }

  /** The first route added with this id, else -1. */
  indexOf(id: string): number {
    return (this.slots[this.find(id)] as number) - 1;
  }

  /** The slot holding `id`, else the empty slot where it would go. */
  private find(id: string): number {
    // FNV-1a over UTF-16 code units.
    let hash = 0x811c9dc5;
    for (let k = 0; k < id.length; k++) hash = Math.imul(hash ^ id.charCodeAt(k), 0x01000193);
    const { slots, mask } = this;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot] as number;
      if (held === 0 || this.ids(held - 1) === id) return slot;
    }
  }
}
