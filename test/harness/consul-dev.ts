/**
 * A fresh, real Consul dev agent per test file (scripts/consul-dev.sh), on a free loopback port,
 * stopped by PID afterwards.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Consul } from "../../shared/consul.js";
import { CONSUL_BIN, ROOT } from "./paths.js";
import { freePortRange } from "./ports.js";
import { killAndWait } from "./process.js";

const run = promisify(execFile);

export interface TestConsul {
  addr: string;
  port: number;
  pid: number;
  dir: string;
  client: Consul;
  stop(): Promise<void>;
  /** stop and start again on the same port: an empty Consul whose indexes start over */
  restart(): Promise<void>;
}

export function freePorts(count: number): Promise<number> {
  return freePortRange(Array<string>(count).fill("127.0.0.1"), 20000, 20000, "a test Consul");
}

async function launch(port: number, args: string[], token?: string): Promise<{ pid: number; dir: string }> {
  const env = { ...process.env, CONSUL_BIN, ...(token ? { CONSUL_HTTP_TOKEN: token } : {}) };
  const { stdout } = await run("bash", [join(ROOT, "scripts", "consul-dev.sh"), String(port), ...args], { env });
  const get = (k: string): string => {
    const m = new RegExp(`^${k}=(.*)$`, "m").exec(stdout);
    if (!m?.[1]) throw new Error(`consul-dev.sh printed no ${k}: ${stdout}`);
    return m[1];
  };
  return { pid: Number(get("CONSUL_PID")), dir: get("CONSUL_DIR") };
}

/** `token`: a management token the agent is configured with (ACLs on); the client uses it. */
export async function startConsul(args: string[] = [], token?: string): Promise<TestConsul> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePorts(3);
    try {
      let { pid, dir } = await launch(port, args, token);
      const addr = `http://127.0.0.1:${port}`;
      const self: TestConsul = {
        addr,
        port,
        pid,
        dir,
        client: new Consul({ addr, token }),
        async stop() {
          await killAndWait(self.pid);
          rmSync(self.dir, { recursive: true, force: true });
        },
        async restart() {
          await self.stop();
          ({ pid, dir } = await launch(port, args, token));
          self.pid = pid;
          self.dir = dir;
        },
      };
      return self;
    } catch (err) {
      lastErr = err; // a port taken between the check and the bind: try another range
    }
  }
  throw lastErr;
}
