/**
 * Solana `exact`: the wire decoder, the associated-token-account derivation, and the local
 * checks, against transactions made independently — by the official `@x402/svm` client, and by
 * `@solana/kit` with the official token and compute-budget instruction builders for variants the
 * client would never make. The local Solana (stack/solana.ts) answers the client's mint lookup.
 */

import {
  type Address,
  address,
  appendTransactionMessageInstructions,
  createTransactionMessage,
  getAddressDecoder,
  getBase64EncodedWireTransaction,
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  type Instruction,
  isOffCurveAddress,
  type KeyPairSigner,
  partiallySignTransactionMessageWithSigners,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
} from "@solana/kit";
import {
  COMPUTE_BUDGET_PROGRAM_ADDRESS,
  getSetComputeUnitLimitInstruction,
  getSetComputeUnitPriceInstruction,
} from "@solana-program/compute-budget";
import {
  ASSOCIATED_TOKEN_PROGRAM_ADDRESS,
  findAssociatedTokenPda,
  getTransferCheckedInstruction,
  TOKEN_PROGRAM_ADDRESS,
} from "@solana-program/token";
import { TOKEN_2022_PROGRAM_ADDRESS } from "@solana-program/token-2022";
import * as svm from "@x402/svm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ASSOCIATED_TOKEN_PROGRAM,
  addressBytes,
  associatedTokenAccount,
  COMPUTE_BUDGET_PROGRAM,
  isOnCurve,
  LIGHTHOUSE_PROGRAM,
  MEMO_PROGRAM,
  TOKEN_2022_PROGRAM,
  TOKEN_PROGRAM,
} from "../../src/schemes/exact-svm/address.ts";
import {
  checkSignatures,
  checkTransaction,
  exactSvmIdentity,
  type SvmTerms,
} from "../../src/schemes/exact-svm/checks.ts";
import {
  decodeTransaction,
  MAX_TRANSACTION_BYTES,
  type SolanaTransaction,
} from "../../src/schemes/exact-svm/transaction.ts";
import {
  SOLANA_DEVNET,
  SOLANA_USDC,
  SOLANA_USDC_DECIMALS,
  type SolanaRpcServer,
  solanaSigner,
  startSolanaRpc,
} from "../../stack/solana.ts";
import { officialSolanaPayment } from "../support/solana.ts";

let rpc: SolanaRpcServer;
let buyer: KeyPairSigner;
let seller: KeyPairSigner;
let feePayer: KeyPairSigner;
let terms: SvmTerms;

beforeAll(async () => {
  rpc = await startSolanaRpc(0);
  buyer = await solanaSigner("buyer");
  seller = await solanaSigner("seller");
  feePayer = await solanaSigner("facilitator");
  terms = {
    network: SOLANA_DEVNET,
    amount: "1000",
    asset: SOLANA_USDC,
    decimals: SOLANA_USDC_DECIMALS,
    tokenProgram: TOKEN_PROGRAM_ADDRESS,
    payTo: seller.address,
    feePayer: feePayer.address,
  };
});
afterAll(() => rpc?.stop());

const programs = {
  TOKEN_PROGRAM,
  TOKEN_2022_PROGRAM,
  ASSOCIATED_TOKEN_PROGRAM,
  COMPUTE_BUDGET_PROGRAM,
  MEMO_PROGRAM,
  LIGHTHOUSE_PROGRAM,
};

const wireBytes = (base64: string) => new Uint8Array(getBase64Encoder().encode(base64));

/** What the official client sends for `terms`: the wire bytes of its partly signed transaction. */
async function officialPayment(overrides: Partial<SvmTerms> = {}): Promise<Uint8Array> {
  const t = { ...terms, ...overrides };
  const payload = await officialSolanaPayment(buyer, rpc.url, {
    scheme: "exact",
    network: t.network as `${string}:${string}`,
    amount: t.amount,
    asset: t.asset,
    payTo: t.payTo,
    maxTimeoutSeconds: 60,
    extra: { feePayer: t.feePayer, ...(t.memo ? { memo: t.memo } : {}) },
  });
  return wireBytes(String(payload.payload.transaction));
}

interface Variant {
  amount?: bigint;
  decimals?: number;
  mint?: Address;
  destinationOwner?: Address;
  feePayer?: Address;
  price?: number;
  limitFirst?: boolean;
  extra?: Instruction[];
}

/** A transaction built with kit and the official instruction builders, signed by the buyer. */
async function built(v: Variant = {}): Promise<Uint8Array> {
  const mint = v.mint ?? SOLANA_USDC;
  const [source] = await findAssociatedTokenPda({ mint, owner: buyer.address, tokenProgram: TOKEN_PROGRAM_ADDRESS });
  const [destination] = await findAssociatedTokenPda({
    mint,
    owner: v.destinationOwner ?? seller.address,
    tokenProgram: TOKEN_PROGRAM_ADDRESS,
  });
  const limit = getSetComputeUnitLimitInstruction({ units: 20_000 });
  const price = getSetComputeUnitPriceInstruction({ microLamports: BigInt(v.price ?? 1) });
  const transfer = getTransferCheckedInstruction({
    source,
    mint,
    destination,
    authority: buyer,
    amount: v.amount ?? 1000n,
    decimals: v.decimals ?? SOLANA_USDC_DECIMALS,
  });
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayer(v.feePayer ?? feePayer.address, m),
    (m) =>
      appendTransactionMessageInstructions(
        v.limitFirst === false ? [price, limit, transfer] : [limit, price, transfer],
        m,
      ),
    (m) => appendTransactionMessageInstructions(v.extra ?? [], m),
    (m) =>
      setTransactionMessageLifetimeUsingBlockhash(
        { blockhash: rpc.chain.svm.latestBlockhash(), lastValidBlockHeight: 1000n },
        m,
      ),
  );
  const signed = await partiallySignTransactionMessageWithSigners(message);
  return wireBytes(getBase64EncodedWireTransaction(signed));
}

function decoded(bytes: Uint8Array): SolanaTransaction {
  const result = decodeTransaction(bytes);
  if (!result.ok) throw new Error(result.problem);
  return result.tx;
}

const memo = (text: string): Instruction => ({
  programAddress: address("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
  data: new TextEncoder().encode(text),
});

describe("decodeTransaction", () => {
  it("reads the official client's transaction as @solana/kit does", async () => {
    const bytes = await officialPayment();
    const tx = decoded(bytes);
    const kitTx = getTransactionDecoder().decode(bytes);
    const compiled = getCompiledTransactionMessageDecoder().decode(kitTx.messageBytes);
    expect(tx.message).toEqual(new Uint8Array(kitTx.messageBytes));
    expect(tx.version).toBe(compiled.version);
    expect(tx.requiredSignatures).toBe(compiled.header.numSignerAccounts);
    expect(tx.accounts.map((a) => getAddressDecoder().decode(a))).toEqual(compiled.staticAccounts);
    expect(tx.instructions.map((ix) => ix.program)).toEqual(compiled.instructions.map((ix) => ix.programAddressIndex));
    expect(tx.instructions.map((ix) => ix.accounts)).toEqual(
      compiled.instructions.map((ix) => ix.accountIndices ?? []),
    );
    expect(tx.instructions.map((ix) => [...ix.data])).toEqual(compiled.instructions.map((ix) => [...(ix.data ?? [])]));
  });

  it("refuses every truncation, trailing bytes, oversize and impossible headers, with a reason and no throw", async () => {
    const bytes = await officialPayment();
    for (let n = 0; n < bytes.length; n++) {
      const result = decodeTransaction(bytes.subarray(0, n));
      expect(result.ok, `truncated to ${n}`).toBe(false);
    }
    const longer = new Uint8Array([...bytes, 0]);
    expect(decodeTransaction(longer)).toEqual({ ok: false, problem: "bytes after the end of the message" });
    expect(decodeTransaction(new Uint8Array(MAX_TRANSACTION_BYTES + 1))).toMatchObject({ ok: false });
    const version1 = bytes.slice();
    version1[1 + 64 * 2] = 0x81;
    expect(decodeTransaction(version1)).toEqual({ ok: false, problem: "message version 1 does not exist" });
    const oneSignature = new Uint8Array([1, ...bytes.subarray(1 + 64, 1 + 128), ...bytes.subarray(1 + 128)]);
    expect(decodeTransaction(oneSignature)).toEqual({ ok: false, problem: "1 signatures for 2 required signers" });
  });

  it("checks program and account indexes against the accounts, table-loaded ones included", () => {
    // One signer (the fee payer), one account, one instruction calling account 0 with `index`.
    const tx = (index: number, lookups: number[] = []) =>
      new Uint8Array([
        1,
        ...new Uint8Array(64),
        ...(lookups.length ? [0x80] : []),
        1,
        0,
        0,
        1,
        ...new Uint8Array(32).fill(9),
        ...new Uint8Array(32),
        1,
        0,
        1,
        index,
        0,
        ...(lookups.length ? [1, ...new Uint8Array(32).fill(5), lookups.length, ...lookups, 0] : []),
      ]);
    expect(decodeTransaction(tx(0))).toMatchObject({ ok: true, tx: { version: "legacy", lookups: 0 } });
    expect(decodeTransaction(tx(1))).toEqual({ ok: false, problem: "instruction 0: account index 1 out of range" });
    expect(decodeTransaction(tx(1, [3]))).toMatchObject({ ok: true, tx: { version: 0, lookups: 1 } });
    expect(decodeTransaction(tx(2, [3]))).toEqual({
      ok: false,
      problem: "instruction 0: account index 2 out of range",
    });
  });

  it("never throws on arbitrary bytes or on mutations of a real transaction", async () => {
    const bytes = await officialPayment();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), (junk) => {
        decodeTransaction(junk);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.nat(255), (at, value) => {
        const copy = bytes.slice();
        copy[at] = value;
        const result = decodeTransaction(copy);
        if (result.ok) expect(result.tx.signatures.length).toBe(result.tx.requiredSignatures);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("associated token accounts", () => {
  it("names the programs as the official packages do", () => {
    expect(programs).toEqual({
      TOKEN_PROGRAM: TOKEN_PROGRAM_ADDRESS,
      TOKEN_2022_PROGRAM: TOKEN_2022_PROGRAM_ADDRESS,
      ASSOCIATED_TOKEN_PROGRAM: ASSOCIATED_TOKEN_PROGRAM_ADDRESS,
      COMPUTE_BUDGET_PROGRAM: COMPUTE_BUDGET_PROGRAM_ADDRESS,
      MEMO_PROGRAM: svm.MEMO_PROGRAM_ADDRESS,
      LIGHTHOUSE_PROGRAM: svm.LIGHTHOUSE_PROGRAM_ADDRESS,
    });
  });

  it("isOnCurve agrees with @solana/kit on random bytes and on real keys", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const spelled = getAddressDecoder().decode(bytes);
        expect(isOnCurve(bytes)).toBe(!isOffCurveAddress(spelled));
      }),
      { numRuns: 500 },
    );
    for (const signer of [buyer, seller, feePayer])
      expect(isOnCurve(addressBytes(signer.address) as Uint8Array)).toBe(true);
  });

  it("derives the same associated token account as @solana-program/token for random owners and mints", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.boolean(), async (owner, usdc) => {
        const ownerAddress = getAddressDecoder().decode(owner);
        const mint = usdc ? SOLANA_USDC : ownerAddress;
        const [expected] = await findAssociatedTokenPda({
          mint,
          owner: ownerAddress,
          tokenProgram: TOKEN_PROGRAM_ADDRESS,
        });
        expect(await associatedTokenAccount(ownerAddress, mint, TOKEN_PROGRAM_ADDRESS)).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });
});

describe("checkTransaction", () => {
  it("accepts the official client's payment and names the buyer as payer", async () => {
    expect(await checkTransaction(decoded(await officialPayment()), terms)).toEqual({ ok: true, payer: buyer.address });
    expect(await checkTransaction(decoded(await built()), terms)).toEqual({ ok: true, payer: buyer.address });
    expect(await checkTransaction(decoded(await built({ extra: [memo("order 42")] })), terms)).toMatchObject({
      ok: true,
    });
  });

  it("checks a memo the seller requires", async () => {
    const withMemo = { ...terms, memo: "invoice-7" };
    expect(await checkTransaction(decoded(await officialPayment({ memo: "invoice-7" })), withMemo)).toMatchObject({
      ok: true,
    });
    const other = await checkTransaction(decoded(await built({ extra: [memo("invoice-8")] })), withMemo);
    expect(other).toMatchObject({ ok: false, failure: { reason: "transaction_not_allowed" } });
  });

  const reasonOf = async (v: Variant, t: Partial<SvmTerms> = {}) => {
    const result = await checkTransaction(decoded(await built(v)), { ...terms, ...t });
    return result.ok ? "ok" : `${result.failure.reason}: ${result.failure.detail ?? ""}`;
  };

  it("refuses each way a transaction can miss the terms, with a specific reason", async () => {
    expect(await reasonOf({ amount: 999n })).toBe("amount_mismatch: 999");
    expect(await reasonOf({ decimals: 5 })).toBe("asset_mismatch: 5");
    expect(await reasonOf({ mint: buyer.address })).toBe(`asset_mismatch: ${buyer.address}`);
    expect(await reasonOf({}, { tokenProgram: "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb" })).toMatch(
      /^asset_mismatch/,
    );
    expect(await reasonOf({ destinationOwner: buyer.address })).toMatch(/^pay_to_mismatch: /);
    expect(await reasonOf({ feePayer: seller.address })).toBe(`fee_payer_mismatch: ${seller.address}`);
  });

  it("refuses a transfer whose authority does not sign, and any address table lookup", async () => {
    const tx = decoded(await built());
    const transfer = tx.instructions[2] as SolanaTransaction["instructions"][number];
    const unsigned = {
      ...transfer,
      accounts: [transfer.accounts[0], transfer.accounts[1], transfer.accounts[2], transfer.accounts[1]] as number[],
    };
    const forged = { ...tx, instructions: [tx.instructions[0], tx.instructions[1], unsigned] } as SolanaTransaction;
    expect(await checkTransaction(forged, terms)).toMatchObject({
      ok: false,
      failure: { reason: "transaction_not_allowed", detail: "the transfer's authority does not sign the transaction" },
    });
    expect(await checkTransaction({ ...tx, lookups: 1 }, terms)).toMatchObject({
      ok: false,
      failure: { detail: "address table lookups cannot be checked before settlement" },
    });
  });

  it("refuses layouts the scheme does not allow", async () => {
    expect(await reasonOf({ price: 5_000_001 })).toMatch(/^transaction_not_allowed: compute unit price 5000001/);
    expect(await reasonOf({ price: 5_000_000 })).toBe("ok");
    expect(await reasonOf({ limitFirst: false })).toBe(
      "transaction_not_allowed: instruction 0 must be SetComputeUnitLimit",
    );
    const transferAgain = getTransferCheckedInstruction({
      source: address(seller.address),
      mint: SOLANA_USDC,
      destination: address(seller.address),
      authority: buyer,
      amount: 1n,
      decimals: 6,
    });
    expect(await reasonOf({ extra: [transferAgain] })).toMatch(
      /^transaction_not_allowed: instruction 3 calls Tokenkeg/,
    );
    const fiveMemos = [1, 2, 3, 4, 5].map((i) => memo(String(i)));
    expect(await reasonOf({ extra: fiveMemos })).toBe(
      "transaction_not_allowed: 8 instructions; the scheme allows 3 to 7",
    );
    const drainsFeePayer: Instruction = {
      ...memo("x"),
      accounts: [{ address: feePayer.address, role: 3 /* writable signer */ }],
    };
    expect(await reasonOf({ extra: [drainsFeePayer] })).toBe(
      "transaction_not_allowed: instruction 3 uses the fee payer's account",
    );
  });
});

describe("checkSignatures and the identity", () => {
  it("refuses every change to what the buyer signed, or to the buyer's signature", async () => {
    const bytes = await officialPayment();
    const messageStart = 1 + 64 * 2;
    await fc.assert(
      fc.asyncProperty(fc.nat(bytes.length - 65 - 1), fc.integer({ min: 1, max: 255 }), async (i, flip) => {
        // Anywhere after the fee payer's (unsigned) slot: the buyer's signature or the message.
        const at = 65 + i;
        const copy = bytes.slice();
        copy[at] = (copy[at] as number) ^ flip;
        const decoded = decodeTransaction(copy);
        if (!decoded.ok) return; // refused as malformed before any check
        const layout = await checkTransaction(decoded.tx, terms);
        const signatures = await checkSignatures(decoded.tx);
        expect(layout.ok && signatures === undefined, `byte ${at} (message from ${messageStart})`).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it("verifies the buyer's signature and refuses a changed signature or message", async () => {
    const bytes = await officialPayment();
    expect(await checkSignatures(decoded(bytes))).toBeUndefined();
    const sigFlipped = bytes.slice();
    (sigFlipped[1 + 64 + 10] as number) ^= 1;
    expect(await checkSignatures(decoded(sigFlipped))).toMatchObject({
      reason: "invalid_signature",
      detail: buyer.address,
    });
    const messageFlipped = bytes.slice();
    const at = bytes.length - 3; // inside the memo's data: still decodes
    (messageFlipped[at] as number) ^= 1;
    expect(await checkSignatures(decoded(messageFlipped))).toMatchObject({ reason: "invalid_signature" });
  });

  it("is the message: the same message with another signature is the same payment, another message is not", async () => {
    const bytes = await officialPayment();
    const tx = decoded(bytes);
    const feePayerSigned = bytes.slice();
    feePayerSigned.fill(7, 1, 65); // the fee payer's slot, which the facilitator fills
    expect(await exactSvmIdentity(decoded(feePayerSigned), SOLANA_DEVNET)).toBe(
      await exactSvmIdentity(tx, SOLANA_DEVNET),
    );
    const again = decoded(await officialPayment()); // the client adds a random memo nonce
    expect(await exactSvmIdentity(again, SOLANA_DEVNET)).not.toBe(await exactSvmIdentity(tx, SOLANA_DEVNET));
    expect(await exactSvmIdentity(tx, SOLANA_DEVNET)).toMatch(
      /^exact-svm:solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1:\w{43,44}$/,
    );
  });
});
