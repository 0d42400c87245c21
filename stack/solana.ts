/**
 * A local Solana for the offline loop: `litesvm` (the Solana VM in-process, running the real SPL
 * Token, ATA and Memo programs) behind a JSON-RPC server of our own on loopback, posing as devnet
 * so that `@x402/svm`'s client and facilitator (which only know mainnet, devnet and testnet) talk
 * to it through an `rpcUrl` override. It answers the methods those packages and `x402-fetch` call,
 * the way a validator does (FACTS.md, "Solana, offline"):
 *
 * - one blockhash: litesvm accepts only its latest, so it is never expired between sends;
 * - `simulateTransaction` honours `sigVerify` (off by default, as on a validator, so a partly
 *   signed transaction simulates) and `replaceRecentBlockhash`;
 * - a transaction's id is its first signature, also when it failed;
 * - a duplicate send returns the same id and keeps the first outcome (litesvm's own answer to
 *   the second copy is `AlreadyProcessed`, which a validator never records as the status);
 * - simulating a message that already landed answers `AlreadyProcessed`, also when its fee
 *   payer's signature is missing (litesvm alone simulates it again as if new);
 * - `skipPreflight: false` simulates first and refuses with -32002, as a validator does.
 *
 * The devnet USDC mint is installed at its devnet address with 6 decimals, and balances are set
 * directly in account data (`fund`), as a test validator's genesis accounts would be.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type Address,
  address,
  createKeyPairSignerFromPrivateKeyBytes,
  getBase58Decoder,
  getBase64Decoder,
  getBase64Encoder,
  getTransactionDecoder,
  type KeyPairSigner,
  type Transaction,
} from "@solana/kit";
import {
  AccountState,
  findAssociatedTokenPda,
  getMintDecoder,
  getMintEncoder,
  getTokenDecoder,
  getTokenEncoder,
  TOKEN_PROGRAM_ADDRESS,
} from "@solana-program/token";
import { LiteSVM } from "litesvm";

/** Solana devnet, as CAIP-2 and as x402 v1 names it. */
export const SOLANA_DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
export const SOLANA_DEVNET_V1 = "solana-devnet";
/** Devnet USDC's mint; the local chain installs a 6-decimal mint at this address. */
export const SOLANA_USDC = address("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
export const SOLANA_USDC_DECIMALS = 6;
const MINT_SIZE = 82;
const TOKEN_ACCOUNT_SIZE = 165;
const LAMPORTS_PER_SOL = 1_000_000_000n;

/** Who holds which key on the local Solana: fixed seeds, so addresses are the same every run. */
export const SOLANA_ROLE = { mintAuthority: 1, facilitator: 2, seller: 3, buyer: 4, stranger: 5 } as const;
export type SolanaRole = keyof typeof SOLANA_ROLE;

/** The role's key pair: an Ed25519 key whose 32 seed bytes are all the role's number. */
export function solanaSigner(role: SolanaRole): Promise<KeyPairSigner> {
  return createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(32).fill(SOLANA_ROLE[role]));
}

type Status = { slot: number; err: unknown };

export class LocalSolana {
  readonly svm = new LiteSVM();
  #slot = 1;
  #minted = 0n;
  readonly #statuses = new Map<string, Status>();
  /** Messages that landed: a validator's status cache knows a transaction by its message too. */
  readonly #landed = new Set<string>();
  /**
   * A slow chain, as anvil's automine off is for EVM: while true, `getSignatureStatuses` knows no
   * signature, so a facilitator keeps waiting for its confirmation. Transactions still run when
   * sent (balances move); only their confirmation is not reported until this is false again.
   */
  confirmationsHeld = false;

  readonly mintAuthority: Address;

  private constructor(mintAuthority: Address) {
    this.mintAuthority = mintAuthority;
  }

  static async create(): Promise<LocalSolana> {
    const chain = new LocalSolana((await solanaSigner("mintAuthority")).address);
    chain.#writeMint();
    return chain;
  }

  get slot(): number {
    return this.#slot;
  }

  /** Gives `owner` SOL (for fees) and/or USDC (in its associated token account, created if needed). */
  async fund(owner: Address, amounts: { sol?: bigint; usdc?: bigint }): Promise<void> {
    if (amounts.sol) {
      const result = this.svm.airdrop(owner, (amounts.sol * LAMPORTS_PER_SOL) as never);
      if (result === null || "err" in result) throw new Error(`airdrop to ${owner} failed`);
    }
    if (amounts.usdc !== undefined) {
      const ata = await this.tokenAccount(owner);
      const held = this.usdcBalance(ata) ?? 0n;
      this.#minted += amounts.usdc;
      this.svm.setAccount({
        address: ata,
        lamports: this.svm.minimumBalanceForRentExemption(BigInt(TOKEN_ACCOUNT_SIZE)) as never,
        programAddress: TOKEN_PROGRAM_ADDRESS,
        executable: false,
        data: new Uint8Array(
          getTokenEncoder().encode({
            mint: SOLANA_USDC,
            owner,
            amount: held + amounts.usdc,
            delegate: null,
            state: AccountState.Initialized,
            isNative: null,
            delegatedAmount: 0n,
            closeAuthority: null,
          }),
        ),
        space: BigInt(TOKEN_ACCOUNT_SIZE),
      } as never);
      this.#writeMint();
    }
  }

  /** `owner`'s USDC associated token account. */
  async tokenAccount(owner: Address): Promise<Address> {
    const [ata] = await findAssociatedTokenPda({ mint: SOLANA_USDC, owner, tokenProgram: TOKEN_PROGRAM_ADDRESS });
    return ata;
  }

  /** The USDC held by a token account, or undefined if it does not exist. */
  usdcBalance(tokenAccount: Address): bigint | undefined {
    const account = this.svm.getAccount(tokenAccount);
    if (!account.exists || account.programAddress !== TOKEN_PROGRAM_ADDRESS) return undefined;
    return getTokenDecoder().decode(account.data).amount;
  }

  /** `owner`'s USDC, 0 when it has no token account. */
  async usdcOf(owner: Address): Promise<bigint> {
    return this.usdcBalance(await this.tokenAccount(owner)) ?? 0n;
  }

  solOf(owner: Address): bigint {
    return BigInt(this.svm.getBalance(owner) ?? 0n);
  }

  #writeMint(): void {
    this.svm.setAccount({
      address: SOLANA_USDC,
      lamports: this.svm.minimumBalanceForRentExemption(BigInt(MINT_SIZE)) as never,
      programAddress: TOKEN_PROGRAM_ADDRESS,
      executable: false,
      data: new Uint8Array(
        getMintEncoder().encode({
          mintAuthority: this.mintAuthority,
          supply: this.#minted,
          decimals: SOLANA_USDC_DECIMALS,
          isInitialized: true,
          freezeAuthority: null,
        }),
      ),
      space: BigInt(MINT_SIZE),
    } as never);
  }

  /** What the server answers for one JSON-RPC call; throws RpcError for a JSON-RPC error. */
  call(method: string, params: unknown[]): unknown {
    const context = { slot: this.#slot, apiVersion: "2.2.0" };
    switch (method) {
      case "getVersion":
        return { "solana-core": "2.2.0", "feature-set": 0 };
      case "getHealth":
        return "ok";
      case "getSlot":
      case "getBlockHeight":
        return this.#slot;
      case "getLatestBlockhash":
        return { context, value: this.#blockhash() };
      case "getBalance":
        return { context, value: Number(this.svm.getBalance(addressParam(params[0])) ?? 0n) };
      case "getAccountInfo":
        return { context, value: this.#accountInfo(addressParam(params[0]), options(params[1]).encoding) };
      case "getTokenAccountBalance": {
        const amount = this.usdcBalance(addressParam(params[0]));
        if (amount === undefined) throw new RpcError(-32602, "Invalid param: could not find account");
        return { context, value: tokenAmount(amount) };
      }
      case "simulateTransaction":
        return { context, value: this.#simulate(transactionParam(params[0], options(params[1]).encoding), options(params[1])) };
      case "sendTransaction":
        return this.#send(transactionParam(params[0], options(params[1]).encoding), options(params[1]));
      case "getSignatureStatuses": {
        if (!Array.isArray(params[0])) throw new RpcError(-32602, "Invalid params: expected an array of signatures");
        const value = params[0].map((signature) => {
          const status = this.confirmationsHeld ? undefined : this.#statuses.get(String(signature));
          if (!status) return null;
          return {
            slot: status.slot,
            confirmations: null,
            err: status.err,
            status: status.err === null ? { Ok: null } : { Err: status.err },
            confirmationStatus: "finalized",
          };
        });
        return { context, value };
      }
      default:
        throw new RpcError(-32601, "Method not found");
    }
  }

  #blockhash() {
    return { blockhash: this.svm.latestBlockhash(), lastValidBlockHeight: this.#slot + 150 };
  }

  #accountInfo(at: Address, encoding = "base64") {
    const account = this.svm.getAccount(at);
    if (!account.exists) return null;
    const base = {
      lamports: Number(account.lamports),
      owner: account.programAddress,
      executable: account.executable,
      rentEpoch: 0,
      space: account.data.length,
    };
    if (encoding === "jsonParsed" && account.programAddress === TOKEN_PROGRAM_ADDRESS) {
      const parsed = parseToken(account.data);
      if (parsed) return { ...base, data: { program: "spl-token", parsed, space: account.data.length } };
    }
    if (encoding !== "base64" && encoding !== "jsonParsed") {
      throw new RpcError(-32602, `Invalid params: encoding ${encoding} is not served here`);
    }
    return { ...base, data: [getBase64Decoder().decode(account.data), "base64"] };
  }

  #simulate(tx: Transaction, opts: Options) {
    const sigVerify = opts.sigVerify ?? false;
    const replace = opts.replaceRecentBlockhash ?? false;
    if (sigVerify && replace) {
      throw new RpcError(-32602, "Invalid params: sigVerify may not be used with replaceRecentBlockhash");
    }
    if (!replace && this.#landed.has(messageKey(tx))) return simulated("AlreadyProcessed", [], 0n);
    let result: ReturnType<LiteSVM["simulateTransaction"]>;
    try {
      this.svm.withSigverify(sigVerify).withBlockhashCheck(!replace);
      result = this.svm.simulateTransaction(tx);
    } catch {
      // litesvm throws before simulating a transaction that lacks signatures while sigVerify is on.
      return simulated("SignatureFailure", [], 0n, replace ? this.#blockhash() : undefined);
    } finally {
      this.svm.withSigverify(true).withBlockhashCheck(true);
    }
    const replacement = replace ? this.#blockhash() : undefined;
    if ("err" in result) {
      const meta = result.meta();
      return simulated(transactionError(result.err()), meta.logs(), meta.computeUnitsConsumed(), replacement);
    }
    const meta = result.meta();
    return simulated(null, meta.logs(), meta.computeUnitsConsumed(), replacement);
  }

  #send(tx: Transaction, opts: Options): string {
    const id = transactionId(tx);
    if (this.#statuses.has(id)) return id;
    if (!opts.skipPreflight) {
      const preflight = this.#simulate(tx, { sigVerify: true });
      if (preflight.err !== null) {
        throw new RpcError(-32002, `Transaction simulation failed: ${JSON.stringify(preflight.err)}`, {
          err: preflight.err,
          logs: preflight.logs,
        });
      }
    }
    let err: unknown = null;
    try {
      const result = this.svm.sendTransaction(tx);
      if ("err" in result) err = transactionError(result.err());
      else this.#landed.add(messageKey(tx));
    } catch {
      throw new RpcError(-32003, "Transaction signature verification failure");
    }
    this.#slot++;
    this.#statuses.set(id, { slot: this.#slot, err });
    return id;
  }
}

export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

interface Options {
  encoding?: string;
  sigVerify?: boolean;
  replaceRecentBlockhash?: boolean;
  skipPreflight?: boolean;
}

function options(value: unknown): Options {
  return typeof value === "object" && value !== null ? (value as Options) : {};
}

function addressParam(value: unknown): Address {
  try {
    return address(String(value));
  } catch {
    throw new RpcError(-32602, `Invalid param: ${String(value)} is not a valid address`);
  }
}

function transactionParam(value: unknown, encoding = "base58"): Transaction {
  if (typeof value !== "string") throw new RpcError(-32602, "Invalid params: expected an encoded transaction");
  if (encoding !== "base64") throw new RpcError(-32602, "Invalid params: only base64 transactions are served here");
  try {
    return getTransactionDecoder().decode(getBase64Encoder().encode(value));
  } catch {
    throw new RpcError(-32602, "invalid transaction: failed to deserialize");
  }
}

/** A transaction's id: its first signature (the fee payer's), base58, whether or not it is set. */
function transactionId(tx: Transaction): string {
  const first = Object.values(tx.signatures)[0];
  return getBase58Decoder().decode(first ?? new Uint8Array(64));
}

const messageKey = (tx: Transaction) => createHash("sha256").update(tx.messageBytes as unknown as Uint8Array).digest("hex");

function simulated(err: unknown, logs: string[], units: bigint, replacementBlockhash?: unknown) {
  return {
    err,
    logs,
    accounts: null,
    unitsConsumed: Number(units),
    returnData: null,
    innerInstructions: null,
    ...(replacementBlockhash ? { replacementBlockhash } : {}),
  };
}

function tokenAmount(amount: bigint) {
  const ui = Number(amount) / 10 ** SOLANA_USDC_DECIMALS;
  return { amount: amount.toString(), decimals: SOLANA_USDC_DECIMALS, uiAmount: ui, uiAmountString: String(ui) };
}

/** An SPL Token mint or token account as `jsonParsed` shows it; undefined for other data. */
function parseToken(data: Uint8Array) {
  if (data.length === TOKEN_ACCOUNT_SIZE) {
    const t = getTokenDecoder().decode(data);
    return {
      type: "account",
      info: {
        mint: t.mint,
        owner: t.owner,
        tokenAmount: tokenAmount(t.amount),
        state: t.state === AccountState.Frozen ? "frozen" : "initialized",
        isNative: false,
      },
    };
  }
  if (data.length === MINT_SIZE) {
    const m = getMintDecoder().decode(data);
    return {
      type: "mint",
      info: {
        decimals: m.decimals,
        supply: m.supply.toString(),
        isInitialized: m.isInitialized,
        mintAuthority: m.mintAuthority.__option === "Some" ? m.mintAuthority.value : null,
        freezeAuthority: m.freezeAuthority.__option === "Some" ? m.freezeAuthority.value : null,
      },
    };
  }
  return undefined;
}

// litesvm reports errors as its own enum values and classes; a validator sends Solana's JSON
// shapes ("AlreadyProcessed", {"InstructionError":[2,{"Custom":1}]}). Names in enum order.
const TRANSACTION_ERRORS =
  "AccountInUse AccountLoadedTwice AccountNotFound ProgramAccountNotFound InsufficientFundsForFee InvalidAccountForFee AlreadyProcessed BlockhashNotFound CallChainTooDeep MissingSignatureForFee InvalidAccountIndex SignatureFailure InvalidProgramForExecution SanitizeFailure ClusterMaintenance AccountBorrowOutstanding WouldExceedMaxBlockCostLimit UnsupportedVersion InvalidWritableAccount WouldExceedMaxAccountCostLimit WouldExceedAccountDataBlockLimit TooManyAccountLocks AddressLookupTableNotFound InvalidAddressLookupTableOwner InvalidAddressLookupTableData InvalidAddressLookupTableIndex InvalidRentPayingAccount WouldExceedMaxVoteCostLimit WouldExceedAccountDataTotalLimit MaxLoadedAccountsDataSizeExceeded ResanitizationNeeded InvalidLoadedAccountsDataSizeLimit UnbalancedTransaction ProgramCacheHitMaxLimit CommitCancelled".split(
    " ",
  );
const INSTRUCTION_ERRORS =
  "GenericError InvalidArgument InvalidInstructionData InvalidAccountData AccountDataTooSmall InsufficientFunds IncorrectProgramId MissingRequiredSignature AccountAlreadyInitialized UninitializedAccount UnbalancedInstruction ModifiedProgramId ExternalAccountLamportSpend ExternalAccountDataModified ReadonlyLamportChange ReadonlyDataModified DuplicateAccountIndex ExecutableModified RentEpochModified NotEnoughAccountKeys AccountDataSizeChanged AccountNotExecutable AccountBorrowFailed AccountBorrowOutstanding DuplicateAccountOutOfSync InvalidError ExecutableDataModified ExecutableLamportChange ExecutableAccountNotRentExempt UnsupportedProgramId CallDepth MissingAccount ReentrancyNotAllowed MaxSeedLengthExceeded InvalidSeeds InvalidRealloc ComputationalBudgetExceeded PrivilegeEscalation ProgramEnvironmentSetupFailure ProgramFailedToComplete ProgramFailedToCompile Immutable IncorrectAuthority AccountNotRentExempt InvalidAccountOwner ArithmeticOverflow UnsupportedSysvar IllegalOwner MaxAccountsDataAllocationsExceeded MaxAccountsExceeded MaxInstructionTraceLengthExceeded BuiltinProgramsMustConsumeComputeUnits BorshIoError".split(
    " ",
  );

function transactionError(err: unknown): unknown {
  if (typeof err === "number") return TRANSACTION_ERRORS[err] ?? `TransactionError${err}`;
  const e = err as { index?: number; accountIndex?: number; err?: () => unknown; toString(): string };
  if (typeof e.err === "function" && typeof e.index === "number") {
    const inner = e.err() as number | { code?: number; msg?: string };
    if (typeof inner === "number") return { InstructionError: [e.index, INSTRUCTION_ERRORS[inner] ?? "GenericError"] };
    if (typeof inner.code === "number") return { InstructionError: [e.index, { Custom: inner.code }] };
    return { InstructionError: [e.index, { BorshIoError: inner.msg ?? "" }] };
  }
  if (typeof e.accountIndex === "number") {
    const name = err?.constructor?.name.replace(/^TransactionError/, "") ?? "TransactionError";
    return { [name]: { account_index: e.accountIndex } };
  }
  return String(err);
}

export interface SolanaRpcServer {
  url: string;
  chain: LocalSolana;
  /** Calls received, by method: tests count them. */
  calls: Map<string, number>;
  stop: () => Promise<void>;
}

/** Serves `chain` as a Solana JSON-RPC endpoint on 127.0.0.1:`port` (0 for any free port). */
export async function startSolanaRpc(port: number, chain?: LocalSolana): Promise<SolanaRpcServer> {
  const local = chain ?? (await LocalSolana.create());
  const calls = new Map<string, number>();
  const server = createServer(async (req, res) => {
    if (req.method !== "POST") return reply(res, 405, { jsonrpc: "2.0", id: null, error: { code: -32600, message: "POST only" } });
    let request: { id?: unknown; method?: unknown; params?: unknown };
    try {
      request = JSON.parse(await readBody(req));
    } catch {
      return reply(res, 200, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
    }
    const id = request.id ?? null;
    const method = String(request.method);
    calls.set(method, (calls.get(method) ?? 0) + 1);
    try {
      const result = local.call(method, Array.isArray(request.params) ? request.params : []);
      reply(res, 200, { jsonrpc: "2.0", id, result });
    } catch (error) {
      const e = error instanceof RpcError ? error : new RpcError(-32603, `Internal error: ${(error as Error).message}`);
      reply(res, 200, { jsonrpc: "2.0", id, error: { code: e.code, message: e.message, ...(e.data ? { data: e.data } : {}) } });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    chain: local,
    calls,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = "";
  for await (const chunk of req) body += chunk;
  return body;
}

/** `owner`'s USDC on a running local Solana, read over its RPC (0 without a token account). */
export async function solanaUsdcOf(rpcUrl: string, owner: string): Promise<bigint> {
  const [ata] = await findAssociatedTokenPda({
    mint: SOLANA_USDC,
    owner: address(owner),
    tokenProgram: TOKEN_PROGRAM_ADDRESS,
  });
  const response = await fetch(rpcUrl, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "getTokenAccountBalance", params: [ata] }),
  });
  const body = (await response.json()) as { result?: { value: { amount: string } } };
  return BigInt(body.result?.value.amount ?? 0);
}
