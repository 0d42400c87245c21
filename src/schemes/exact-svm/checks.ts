/**
 * Local checks of a Solana `exact` payment, before any facilitator or RPC sees it: the layout
 * the scheme allows, the terms it pays, the fee payer's isolation and the buyer's signatures.
 *
 * The layout is the one the official facilitator accepts on its static path (read from
 * `@x402/svm` 2.27's shipped code): 3 to 7 instructions; [0] SetComputeUnitLimit, [1]
 * SetComputeUnitPrice at most 5 lamports per compute unit, [2] one `transferChecked` (SPL Token
 * or Token-2022) of exactly the amount, of the asset's mint and decimals, to `payTo`'s associated
 * token account; then only Memo or Lighthouse instructions. Address table lookups are refused:
 * the accounts they load cannot be known without RPC. The fee payer — the facilitator's key,
 * which co-signs and pays the fee at settlement — must be the first account and appear in no
 * instruction, so the buyer's transaction cannot spend from it.
 */
import { type Failure, fail } from "../../errors.ts";
import {
  addressBytes,
  addressOf,
  associatedTokenAccount,
  COMPUTE_BUDGET_PROGRAM,
  LIGHTHOUSE_PROGRAM,
  MEMO_PROGRAM,
  TOKEN_2022_PROGRAM,
  TOKEN_PROGRAM,
} from "./address.ts";
import type { Instruction, SolanaTransaction } from "./transaction.ts";

/** What a Solana requirement asks for, as the checks need it. */
export interface SvmTerms {
  network: string;
  /** Atomic units. */
  amount: string;
  /** The mint, base58. */
  asset: string;
  decimals: number;
  /** The token program that owns the mint: SPL Token or Token-2022. */
  tokenProgram: string;
  payTo: string;
  /** The facilitator's fee payer, from its `/supported`. */
  feePayer: string;
  /** A memo the seller requires, exactly; none required when undefined. */
  memo?: string;
}

/** SetComputeUnitPrice above this many micro-lamports per compute unit is refused (official default). */
export const MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS = 5_000_000n;
const TRANSFER_CHECKED = 12;

export type Checked = { ok: true; payer: string } | { ok: false; failure: Failure };

const refuse = (detail: string): Checked => ({
  ok: false,
  failure: fail("transaction_not_allowed", "The transaction does more than the exact scheme allows.", detail),
});

/** The layout and the terms: synchronous except for the destination's address (cached). */
export async function checkTransaction(tx: SolanaTransaction, terms: SvmTerms): Promise<Checked> {
  const program = (ix: Instruction) => addressOf(tx.accounts[ix.program] as Uint8Array);
  const account = (index: number) => {
    const key = tx.accounts[index];
    return key ? addressOf(key) : undefined;
  };

  if (tx.lookups > 0) return refuse("address table lookups cannot be checked before settlement");
  const n = tx.instructions.length;
  if (n < 3 || n > 7) return refuse(`${n} instructions; the scheme allows 3 to 7`);
  const [limit, price, transfer] = tx.instructions as [Instruction, Instruction, Instruction];

  if (
    program(limit) !== COMPUTE_BUDGET_PROGRAM ||
    limit.data[0] !== 2 ||
    limit.data.length !== 5 ||
    limit.accounts.length
  ) {
    return refuse("instruction 0 must be SetComputeUnitLimit");
  }
  if (
    program(price) !== COMPUTE_BUDGET_PROGRAM ||
    price.data[0] !== 3 ||
    price.data.length !== 9 ||
    price.accounts.length
  ) {
    return refuse("instruction 1 must be SetComputeUnitPrice");
  }
  const microLamports = u64(price.data, 1);
  if (microLamports > MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS) {
    return refuse(`compute unit price ${microLamports} micro-lamports is over ${MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS}`);
  }

  const tokenProgram = program(transfer);
  if (tokenProgram !== TOKEN_PROGRAM && tokenProgram !== TOKEN_2022_PROGRAM) {
    return refuse("instruction 2 must be a token transfer");
  }
  if (transfer.data[0] !== TRANSFER_CHECKED || transfer.data.length !== 10 || transfer.accounts.length < 4) {
    return refuse("instruction 2 must be transferChecked");
  }
  for (const [i, ix] of tx.instructions.slice(3).entries()) {
    const p = program(ix);
    if (p !== MEMO_PROGRAM && p !== LIGHTHOUSE_PROGRAM) return refuse(`instruction ${i + 3} calls ${p}`);
  }
  if (terms.memo !== undefined) {
    const memos = tx.instructions.slice(3).filter((ix) => program(ix) === MEMO_PROGRAM);
    if (memos.length !== 1 || new TextDecoder().decode(memos[0]?.data) !== terms.memo) {
      return refuse("the memo the seller requires is missing or different");
    }
  }

  const feePayer = account(0);
  if (feePayer !== terms.feePayer) {
    return {
      ok: false,
      failure: fail("fee_payer_mismatch", "The transaction's fee payer is not this route's facilitator.", feePayer),
    };
  }
  for (const [i, ix] of tx.instructions.entries()) {
    if (ix.accounts.includes(0)) return refuse(`instruction ${i} uses the fee payer's account`);
  }

  const [, mintIndex, destinationIndex, authorityIndex] = transfer.accounts as [number, number, number, number];
  const mint = account(mintIndex);
  if (mint !== terms.asset || tokenProgram !== terms.tokenProgram) {
    return { ok: false, failure: fail("asset_mismatch", "The transfer is not of this route's asset.", mint) };
  }
  const decimals = transfer.data[9];
  if (decimals !== terms.decimals) {
    return {
      ok: false,
      failure: fail("asset_mismatch", "The transfer's decimals are not the asset's.", String(decimals)),
    };
  }
  const amount = u64(transfer.data, 1);
  if (amount.toString() !== terms.amount) {
    return {
      ok: false,
      failure: fail("amount_mismatch", "The transfer is not of this route's price.", String(amount)),
    };
  }
  const destination = account(destinationIndex);
  if (destination !== (await associatedTokenAccount(terms.payTo, terms.asset, terms.tokenProgram))) {
    return {
      ok: false,
      failure: fail("pay_to_mismatch", "The transfer does not go to this route's payTo.", destination),
    };
  }
  if (authorityIndex >= tx.requiredSignatures) return refuse("the transfer's authority does not sign the transaction");
  return { ok: true, payer: account(authorityIndex) as string };
}

/** Every signer's signature but the fee payer's (the facilitator adds that at settlement). */
export async function checkSignatures(tx: SolanaTransaction): Promise<Failure | undefined> {
  for (let i = 1; i < tx.requiredSignatures; i++) {
    const key = tx.accounts[i] as Uint8Array;
    const signature = tx.signatures[i] as Uint8Array;
    let valid = false;
    try {
      const publicKey = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
      valid = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature, tx.message);
    } catch {
      valid = false;
    }
    if (!valid) {
      return fail("invalid_signature", "A signature on the transaction does not verify.", addressOf(key));
    }
  }
  return undefined;
}

/**
 * The payment's identity, as the chain enforces it: the message. Every signature covers it, a
 * validator refuses a message it has already processed whatever the signatures (Ed25519 lets a
 * signer make many valid signatures over one message), and the official facilitator keys its
 * settlements by the same hash.
 */
export async function exactSvmIdentity(tx: SolanaTransaction, network: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", tx.message));
  return `exact-svm:${network}:${addressOf(hash)}`;
}

export const isSolanaAddress = (value: string): boolean => addressBytes(value) !== undefined;

function u64(data: Uint8Array, at: number): bigint {
  let value = 0n;
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(data[at + i] as number);
  return value;
}
