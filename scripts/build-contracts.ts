/** `npm run contracts`: recompile contracts/*.sol into contracts/build/*.json. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CONTRACTS_DIR, compileContracts } from "./contracts.ts";

for (const [name, artifact] of Object.entries(compileContracts())) {
  const file = join(CONTRACTS_DIR, "build", `${name}.json`);
  writeFileSync(file, `${JSON.stringify(artifact, null, 2)}\n`);
  console.log(`wrote ${file} (${(artifact.deployedBytecode.length - 2) / 2} bytes of runtime code)`);
}
