/**
 * Free TCP ports for the processes the tests and benchmarks start (Consul, etcd): probed by
 * binding, picked at random in a range so that runs side by side rarely collide.
 */
import { createServer } from "node:net";

export function portFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A port B in [from, from + span) with B + i free on hosts[i] for each i; `what` names the user in the error. */
export async function freePortRange(hosts: string[], from: number, span: number, what: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = from + Math.floor(Math.random() * span);
    let ok = true;
    for (let i = 0; i < hosts.length && ok; i++) ok = await portFree(base + i, hosts[i]);
    if (ok) return base;
  }
  throw new Error(`no free port${hosts.length > 1 ? " range" : ""} for ${what}`);
}
