/**
 * u1·G + u2·Q on secp256k1 for signature checks against a known key Q, fast: each point gets a
 * table of its multiples (signed windows, affine), and a product is one mixed addition per
 * non-zero window — about 80 additions for both products, against about 300 in noble's
 * constant-time `multiply`, which also doubles its work with fake additions and the endomorphism.
 *
 * Variable-time on purpose: everything a signature check computes with is public (the
 * signature, the digest, the signer's public key), so its timing tells nothing secret. Never use
 * this with a private scalar.
 *
 * Points are Jacobian (X, Y, Z) with x = X/Z², y = Y/Z³; Z = 0 is the point at infinity.
 * Pure: no I/O, no state outside the tables a caller keeps.
 */
import { invert } from "@noble/curves/abstract/modular";

/** The field prime, 2²⁵⁶ − 2³² − 977. */
const P = 2n ** 256n - 2n ** 32n - 977n;

const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};
/** a − b for a, b in [0, P): a compare instead of a division. */
const sub = (a: bigint, b: bigint): bigint => {
  const r = a - b;
  return r < 0n ? r + P : r;
};

interface Jacobian {
  x: bigint;
  y: bigint;
  z: bigint;
}

const INFINITY: Jacobian = { x: 0n, y: 1n, z: 0n };

/** A point's multiples: entry (w, j) is (j+1)·2^(W·w)·Q, affine, as xs/ys at index w·2^(W−1) + j. */
export interface Table {
  window: number;
  xs: bigint[];
  ys: bigint[];
}

/** 2·A (dbl-2009-l, a = 0). */
function double(a: Jacobian): Jacobian {
  if (a.z === 0n || a.y === 0n) return INFINITY;
  const xx = mod(a.x * a.x);
  const yy = mod(a.y * a.y);
  const yyyy = mod(yy * yy);
  const d = mod(2n * (mod((a.x + yy) * (a.x + yy)) - xx - yyyy));
  const e = 3n * xx;
  const x = mod(e * e - 2n * d);
  return { x, y: mod(e * (d - x) - 8n * yyyy), z: mod(2n * a.y * a.z) };
}

/** A + (x2, y2) with the second point affine (madd, 11 multiplications); every special case handled. */
function addAffine(a: Jacobian, x2: bigint, y2: bigint): Jacobian {
  if (a.z === 0n) return { x: x2, y: y2, z: 1n };
  const zz = mod(a.z * a.z);
  const h = sub(mod(x2 * zz), a.x);
  const r = sub(mod(y2 * a.z * zz), a.y);
  if (h === 0n) return r === 0n ? double(a) : INFINITY;
  const hh = mod(h * h);
  const hhh = mod(h * hh);
  const v = mod(a.x * hh);
  const x = mod(r * r - hhh - 2n * v);
  return { x, y: mod(r * sub(v, x) - a.y * hhh), z: mod(a.z * h) };
}

/** Affine coordinates of several Jacobian points (none at infinity) with one inversion. */
function toAffineAll(points: Jacobian[]): { xs: bigint[]; ys: bigint[] } {
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const p of points) {
    prefix.push(acc);
    acc = mod(acc * p.z);
  }
  let inverse = invert(acc, P);
  const xs = new Array<bigint>(points.length);
  const ys = new Array<bigint>(points.length);
  for (let i = points.length - 1; i >= 0; i--) {
    const p = points[i] as Jacobian;
    const zInverse = mod(inverse * (prefix[i] as bigint));
    inverse = mod(inverse * p.z);
    const zz = mod(zInverse * zInverse);
    xs[i] = mod(p.x * zz);
    ys[i] = mod(p.y * mod(zz * zInverse));
  }
  return { xs, ys };
}

/**
 * The table of an affine point (x, y) on the curve, for scalars below 2²⁵⁶: ⌈256/W⌉ + 1 windows
 * of 2^(W−1) entries, built a few windows at a time (`extend`), so that no one request pays for
 * all of it: each entry costs about one addition, and a whole table some 20–40 ms of CPU.
 */
export class TableBuilder {
  readonly xs: bigint[] = [];
  readonly ys: bigint[] = [];
  /** Windows built so far, and the base of the next one (2^(W·w)·Q). */
  private built = 0;
  private bx: bigint;
  private by: bigint;
  readonly window: number;
  readonly windows: number;
  private table: Table | undefined;

  // No parameter properties: plain Node (the bench scripts) runs this file as it is.
  constructor(x: bigint, y: bigint, window: number) {
    this.bx = x;
    this.by = y;
    this.window = window;
    this.windows = Math.ceil(256 / window) + 1;
  }

  /** Entries built so far, of `windows · 2^(W−1)`. */
  get entries(): number {
    return this.xs.length;
  }

  /** The whole table, once built. */
  get complete(): Table | undefined {
    return this.table;
  }

  /** Builds whole windows, at least one, until about `entries` more entries; the table once complete. */
  extend(entries: number): Table | undefined {
    const half = 1 << (this.window - 1);
    for (let spent = 0; this.built < this.windows && (spent === 0 || spent + half <= entries); spent += half) {
      const row: Jacobian[] = [{ x: this.bx, y: this.by, z: 1n }];
      for (let j = 1; j < half; j++) row.push(addAffine(row[j - 1] as Jacobian, this.bx, this.by));
      row.push(double(row[half - 1] as Jacobian)); // 2^W·base, the next window's base
      const affine = toAffineAll(row);
      for (let j = 0; j < half; j++) {
        this.xs.push(affine.xs[j] as bigint);
        this.ys.push(affine.ys[j] as bigint);
      }
      this.bx = affine.xs[half] as bigint;
      this.by = affine.ys[half] as bigint;
      this.built++;
    }
    if (this.built === this.windows) this.table ??= { window: this.window, xs: this.xs, ys: this.ys };
    return this.table;
  }
}

/** The whole table at once (tests, and callers that can afford it). */
export function tableOf(x: bigint, y: bigint, window: number): Table {
  return new TableBuilder(x, y, window).extend(Number.POSITIVE_INFINITY) as Table;
}

/** acc + k·Q for Q's table, k in [0, 2²⁵⁶): signed windows, one addition per non-zero one. */
function addMultiple(acc: Jacobian, table: Table, k: bigint): Jacobian {
  const { window, xs, ys } = table;
  const half = 1 << (window - 1);
  const full = 1 << window;
  const mask = BigInt(full - 1);
  const shift = BigInt(window);
  let sum = acc;
  for (let w = 0; k > 0n; w++) {
    let digit = Number(k & mask);
    k >>= shift;
    if (digit > half) {
      digit -= full;
      k += 1n;
    }
    if (digit === 0) continue;
    const at = w * half + Math.abs(digit) - 1;
    const y = ys[at] as bigint;
    sum = addAffine(sum, xs[at] as bigint, digit < 0 ? P - y : y);
  }
  return sum;
}

/**
 * u1·A + u2·B, affine, or undefined at infinity; u1, u2 in [0, 2²⁵⁶).
 */
export function sumOfMultiples(a: Table, u1: bigint, b: Table, u2: bigint): { x: bigint; y: bigint } | undefined {
  const sum = addMultiple(addMultiple(INFINITY, a, u1), b, u2);
  if (sum.z === 0n) return undefined;
  const zInverse = invert(sum.z, P);
  const zz = mod(zInverse * zInverse);
  return { x: mod(sum.x * zz), y: mod(sum.y * mod(zz * zInverse)) };
}
