/** The committed contract artifacts are exactly what the sources compile to (`npm run contracts` rebuilds them). */
import { expect, it } from "vitest";
import { CONTRACT_NAMES, compileContracts, readArtifact } from "../../scripts/contracts.ts";

it("has committed artifacts that match the Solidity sources", () => {
  const fresh = compileContracts();
  for (const name of CONTRACT_NAMES) {
    expect(readArtifact(name), `${name}: run npm run contracts`).toEqual(fresh[name]);
  }
}, 30_000);
