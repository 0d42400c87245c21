/**
 * Compiles the test contracts with the pinned npm `solc` (no download, no network).
 * `npm run contracts` rewrites contracts/build/*.json; test/unit/contracts.test.ts checks that the
 * committed artifacts are exactly what the sources compile to.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import solc from "solc";

export const CONTRACTS_DIR = resolve(import.meta.dirname, "..", "contracts");
export const CONTRACT_NAMES = [
  "TestUSDC",
  "Multicall3",
  "Permit2",
  "X402UptoPermit2Proxy",
  "BatchSettlement",
  "ERC3009DepositCollector",
] as const;

export interface Artifact {
  contractName: string;
  compiler: string;
  abi: unknown[];
  bytecode: `0x${string}`;
  deployedBytecode: `0x${string}`;
}

export function compileContracts(): Record<string, Artifact> {
  const sources = Object.fromEntries(
    CONTRACT_NAMES.map((name) => [
      `${name}.sol`,
      { content: readFileSync(join(CONTRACTS_DIR, `${name}.sol`), "utf8") },
    ]),
  );
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e: { severity: string }) => e.severity === "error");
  if (errors.length > 0)
    throw new Error(errors.map((e: { formattedMessage: string }) => e.formattedMessage).join("\n"));
  const artifacts: Record<string, Artifact> = {};
  for (const name of CONTRACT_NAMES) {
    const c = output.contracts[`${name}.sol`][name];
    artifacts[name] = {
      contractName: name,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    };
  }
  return artifacts;
}

export function readArtifact(name: (typeof CONTRACT_NAMES)[number]): Artifact {
  return JSON.parse(readFileSync(join(CONTRACTS_DIR, "build", `${name}.json`), "utf8"));
}
