/**
 * A hash table of (tag, string) keys, each given a small integer id in the order added. Pure.
 *
 * Compiling a 100k-route table is mostly hash-table work: route ids, static routes, the trie's
 * literal edges. V8's Map and Set grow step by step, need a string object per lookup and cost
 * about 30 ms per 100k inserts here (profiled with `npm run bench:matcher`); this table is open
 * addressing over one Int32Array, hashes a key straight from a range of a longer string (no slice
 * to look up; one slice only when a new key is added), and is given its expected size up front.
 * Each slot holds the key's id and its full hash side by side, so a probe reads the key itself
 * only when the hashes agree: a miss costs one cache line, not three.
 * The tag lets one table hold keys of many owners: the trie uses its node id.
 */
export class StringTable {
  /** Pairs: id + 1 (0 = empty), then the key's hash. */
  private slots: Int32Array;
  private mask: number;
  private readonly tags: number[] = [];
  private readonly keys: string[] = [];

  constructor(expected = 8) {
    let size = 16;
    while (size < expected * 2) size *= 2;
    this.slots = new Int32Array(size * 2);
    this.mask = size - 1;
  }

  /** How many keys have been added; the next key added gets this id. */
  get size(): number {
    return this.keys.length;
  }

  /** The id of (tag, `text.slice(start, end)`), or -1. */
  find(tag: number, text: string, start = 0, end = text.length): number {
    return (this.slots[this.slotOf(hash(tag, text, start, end), tag, text, start, end)] as number) - 1;
  }

  /** The id of (tag, `text.slice(start, end)`), added if it is new (then `size` grows by one). */
  add(tag: number, text: string, start = 0, end = text.length): number {
    const h = hash(tag, text, start, end);
    const slot = this.slotOf(h, tag, text, start, end);
    const held = this.slots[slot] as number;
    if (held !== 0) return held - 1;
    const id = this.keys.length;
    this.tags.push(tag);
    this.keys.push(start === 0 && end === text.length ? text : text.slice(start, end));
    this.slots[slot] = id + 1;
    this.slots[slot + 1] = h;
    if (this.keys.length * 2 > this.slots.length / 2) this.grow();
    return id;
  }

  /** The index in `slots` of the pair holding the key, else of the empty pair where it would go. */
  private slotOf(h: number, tag: number, text: string, start: number, end: number): number {
    const { slots, mask, tags, keys } = this;
    const length = end - start;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const held = slots[2 * i] as number;
      if (held === 0) return 2 * i;
      if (slots[2 * i + 1] !== h || tags[held - 1] !== tag) continue;
      const key = keys[held - 1] as string;
      if (key.length === length && text.startsWith(key, start)) return 2 * i;
    }
  }

  private grow(): void {
    const old = this.slots;
    const size = old.length; // pairs: twice as many slots as before
    this.slots = new Int32Array(size * 2);
    this.mask = size - 1;
    for (let j = 0; j < old.length; j += 2) {
      if (old[j] === 0) continue;
      const h = old[j + 1] as number;
      let i = h & this.mask;
      while (this.slots[2 * i] !== 0) i = (i + 1) & this.mask;
      this.slots[2 * i] = old[j] as number;
      this.slots[2 * i + 1] = h;
    }
  }
}

/** FNV-1a over the tag and the UTF-16 code units of `text.slice(start, end)`. */
function hash(tag: number, text: string, start: number, end: number): number {
  let h = Math.imul(0x811c9dc5 ^ tag, 0x01000193);
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h ^ (h >>> 15);
}
