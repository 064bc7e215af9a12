/**
 * The original's config dir made ready-aware, for the fleet section's third Houston row: the same
 * units, each telling systemd when it is ready (`Type=notify`), as docs/configuration.md's
 * "Ready-aware units" shows. The sleepers say READY=1 through `systemd-notify --ready`; the shop's
 * server.py sends READY=1 once it is bound. Nothing else changes (no [X-Houston] section, the seed's
 * own Consul registration), so Houston confirms the same things and needs no window for them: a
 * faster figure from this row comes from readiness, not from looking less.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SLEEPER = "ExecStart=/bin/sleep infinity";
const NOTIFYING_SLEEPER =
  "Type=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'systemd-notify --ready; exec sleep infinity'";
const SERVE = `    Server(("127.0.0.1", 8088), Handler).serve_forever()`;
// bound first, then READY=1 to systemd's socket (an abstract one starts with @), then serve
const NOTIFY_AND_SERVE = [
  `    server = Server(("127.0.0.1", 8088), Handler)`,
  `    import os`,
  `    notify = os.environ.get("NOTIFY_SOCKET", "")`,
  `    if notify:`,
  `        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)`,
  `        s.connect("\\0" + notify[1:] if notify.startswith("@") else notify)`,
  `        s.sendall(b"READY=1")`,
  `    server.serve_forever()`,
].join("\n");

function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, "utf8");
  if (!text.includes(from))
    throw new Error(`${file}: expected ${JSON.stringify(from)} (the original's config changed?)`);
  writeFileSync(file, text.replace(from, to));
}

/** Makes the original's config dir at `dir` (a copy) ready-aware, in place. */
export function makeReadyAware(dir: string): void {
  for (const unit of ["shared/beacon.service", "shared/cache.service", "shared/queue.service"])
    edit(join(dir, "units", unit), SLEEPER, NOTIFYING_SLEEPER);
  edit(join(dir, "units", "service", "shop.service"), "[Service]\n", "[Service]\nType=notify\n");
  edit(join(dir, "files", "service", "shop.yaml"), SERVE, NOTIFY_AND_SERVE);
}
