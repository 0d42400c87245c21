/**
 * Solana addresses: base58 spellings of 32 bytes, and the associated token account a payment
 * must go to. No RPC: an associated token account is a program-derived address, computed.
 */
import { base58 } from "@scure/base";

export const TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
export const TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
export const ASSOCIATED_TOKEN_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL";
export const COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111";
export const MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";
/** Wallet-inserted assertion instructions (Phantom); the official facilitator allows them. */
export const LIGHTHOUSE_PROGRAM = "L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95";

/** 32 bytes from a base58 address, or undefined if it is not one. */
export function addressBytes(address: string): Uint8Array | undefined {
  if (address.length < 32 || address.length > 44) return undefined;
  try {
    const bytes = base58.decode(address);
    return bytes.length === 32 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

export const addressOf = (bytes: Uint8Array): string => base58.encode(bytes);

// Ed25519's field and curve: p = 2^255 - 19, -x^2 + y^2 = 1 + d x^2 y^2.
const P = 2n ** 255n - 19n;
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = base % P;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

/**
 * Whether 32 bytes decompress to a point of Ed25519, as the Solana runtime decides it for a
 * program-derived address (which must not be one): y is the bytes little-endian without the top
 * (sign) bit, taken mod p; the point exists iff x^2 = (y^2 - 1) / (d y^2 + 1) has a root mod p,
 * i.e. iff that ratio is 0 or a quadratic residue (Euler's criterion).
 */
export function isOnCurve(bytes: Uint8Array): boolean {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? (bytes[i] as number) & 0x7f : (bytes[i] as number));
  y %= P;
  const yy = (y * y) % P;
  const u = (yy - 1n + P) % P;
  const v = (D * yy + 1n) % P;
  // v is never 0: -1/d is not a square mod p.
  const ratio = (u * power(v, P - 2n)) % P;
  if (ratio === 0n) return true;
  return power(ratio, (P - 1n) / 2n) === 1n;
}

const PDA_MARKER = new TextEncoder().encode("ProgramDerivedAddress");

/**
 * The program-derived address for `seeds` under `program`: sha256(seeds, bump, program,
 * "ProgramDerivedAddress") for the highest bump in 255..0 whose hash is off the curve.
 */
export async function findProgramAddress(seeds: Uint8Array[], program: Uint8Array): Promise<Uint8Array> {
  const size = seeds.reduce((n, s) => n + s.length, 0);
  const input = new Uint8Array(size + 1 + 32 + PDA_MARKER.length);
  let at = 0;
  for (const seed of seeds) {
    input.set(seed, at);
    at += seed.length;
  }
  const bumpAt = at;
  input.set(program, bumpAt + 1);
  input.set(PDA_MARKER, bumpAt + 33);
  for (let bump = 255; bump >= 0; bump--) {
    input[bumpAt] = bump;
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
    if (!isOnCurve(hash)) return hash;
  }
  throw new Error("no viable bump seed");
}

const ata = new Map<string, Promise<string>>();
const MAX_CACHED = 1024;

/** `owner`'s associated token account for `mint` under `tokenProgram` (base58 in and out). */
export function associatedTokenAccount(owner: string, mint: string, tokenProgram: string): Promise<string> {
  const key = `${owner}|${mint}|${tokenProgram}`;
  let found = ata.get(key);
  if (!found) {
    const [o, m, t, a] = [owner, mint, tokenProgram, ASSOCIATED_TOKEN_PROGRAM].map(addressBytes);
    if (!o || !m || !t || !a) return Promise.reject(new Error("not a Solana address"));
    found = findProgramAddress([o, t, m], a).then(addressOf);
    if (ata.size >= MAX_CACHED) ata.clear();
    ata.set(key, found);
  }
  return found;
}
