import type { TestProject } from "vitest/node";
import { startFacilitator, startOrigin } from "./loopback.ts";

declare module "vitest" {
  export interface ProvidedContext {
    originPort: number;
    facilitatorPort: number;
    facilitatorBPort: number;
  }
}

export default async function setup(project: TestProject) {
  const origin = await startOrigin();
  const facilitator = await startFacilitator();
  // A second facilitator, for failover between two.
  const facilitatorB = await startFacilitator();
  project.provide("originPort", origin.port);
  project.provide("facilitatorPort", facilitator.port);
  project.provide("facilitatorBPort", facilitatorB.port);
  return async () => {
    await facilitatorB.close();
    await facilitator.close();
    await origin.close();
  };
}
