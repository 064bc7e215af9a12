/** Where the harness finds the checkout and the Consul binary (scripts/install-consul.sh puts it in .consul/). */
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");
export const CONSUL_BIN = join(ROOT, ".consul", "bin", "consul");
