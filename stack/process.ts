/** Child processes the stack owns: started in their own process group, stopped by PID with all their children. */
import { type ChildProcess, spawn } from "node:child_process";

export interface Child {
  pid: number;
  name: string;
  stop: () => Promise<void>;
  /** Resolves when the process exits on its own. */
  exited: Promise<number | null>;
  output: () => string;
}

/** Process groups still running; killed outright if this process exits without stopping them. */
const running = new Set<number>();
process.once("exit", () => {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

export function startChild(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; echo?: boolean } = {},
): Child {
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group, so stop() also ends grandchildren (wrangler → workerd)
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = child.pid;
  running.add(pid);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
    if (options.echo) process.stdout.write(chunk);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      running.delete(pid);
      resolve(code);
    }),
  );
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-pid, "SIGTERM");
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  return { pid, name, stop, exited, output: () => output };
}
