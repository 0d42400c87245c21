import type { TestProject } from "vitest/node";
import { startFacilitator, startOrigin } from "./loopback.ts";

declare module "vitest" {
  export interface ProvidedContext {
    originPort: number;
    facilitatorPort: number;
  }
}

export default async function setup(project: TestProject) {
  const origin = await startOrigin();
  const facilitator = await startFacilitator();
  project.provide("originPort", origin.port);
  project.provide("facilitatorPort", facilitator.port);
  return async () => {
    await facilitator.close();
    await origin.close();
  };
}
