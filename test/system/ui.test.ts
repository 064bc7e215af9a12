/**
 * What an operator sees in the Consul UI (real Consul 1.8.7, real hosts, Debian's Chromium driven
 * by playwright-core): each stack is a service `houston-<stack>` tagged with its version on the
 * nodes that run it, and a failed unit is a critical check whose output carries systemd's Result
 * and the unit's last log lines. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";
import { eventually } from "../helpers/specs.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts");
let fleet: LocalFleet;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  // never skipped: `npm test` installs chromium (scripts/install-browser.sh)
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-browser.sh`);
  mkdirSync(ARTIFACTS, { recursive: true });
  fleet = await LocalFleet.start({
    hosts: [
      { name: "ui1", meta: { role: "web" } },
      { name: "ui2", meta: { role: "web" } },
      { name: "ui3", meta: { role: "worker" } },
    ],
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});
afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
});

const sleeper = // not about confirmation: no 5 s window (see watch.test.ts)
  "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nMinHealthy=0\n";

describe("the Consul UI shows Houston's state", () => {
  it("deploys a healthy service and a stack whose unit fails", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  broken: [crash:1]\n",
      "units/service/shop.service": sleeper,
      // oneshot: the start job itself fails, so the rollout sees it whatever the timing
      "units/shared/crash.service":
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo out-of-cheese-error; exit 3'\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=worker\n",
    });
    expect((await houston(fleet.consulAddr, dir, "-s", "service", "shop", "1")).code).toBe(0);
    // -n: the failed unit stays, as an operator would keep it to look at
    expect((await houston(fleet.consulAddr, dir, "-n", "standalone", "broken")).code).toBe(1);
  });

  it("the services list: the stack's service with its version tag", async () => {
    await page.goto(`${fleet.consulAddr}/ui/dc1/services`);
    const row = page.locator(".consul-service-list li", { hasText: "houston-shop" });
    await row.waitFor();
    await eventually("the version tag", async () => (await row.innerText()).includes("version:1"));
    await page.screenshot({ path: join(ARTIFACTS, "ui-services.png"), fullPage: true });
    expect(await page.locator(".consul-service-list li", { hasText: "houston-broken" }).count()).toBe(1);
  });

  it("the stack's service runs on the right nodes", async () => {
    await page.goto(`${fleet.consulAddr}/ui/dc1/services/houston-shop/instances`);
    await page.getByText("ui2").first().waitFor();
    const text = await page.locator("body").innerText();
    await page.screenshot({ path: join(ARTIFACTS, "ui-shop-instances.png"), fullPage: true });
    expect(text).toContain("ui1");
    expect(text).toContain("ui2");
    expect(text).not.toContain("ui3");
  });

  it("a failed unit is a critical check with systemd's Result and its log", async () => {
    await page.goto(`${fleet.consulAddr}/ui/dc1/nodes/ui3/health-checks`);
    const check = page.locator("li", { hasText: "broken-crash@1.service" }).filter({ hasText: "Result=exit-code" });
    await eventually("the failed unit's check", async () => {
      await page.reload();
      return (await check.count()) > 0;
    });
    const text = await check.first().innerText();
    expect(text).toContain("out-of-cheese-error");
    expect(await check.first().getAttribute("class")).toMatch(/critical/);
    await page.screenshot({ path: join(ARTIFACTS, "ui-failed-unit.png"), fullPage: true });
  });

  it("status documents are pretty-printed JSON in the KV view", async () => {
    const raw = (await fleet.consul.kvGet(fleet.kv.stackStatus("ui1", "shop")))!.value.toString();
    expect(raw).toContain('\n  "stack": "shop"');
    await page.goto(`${fleet.consulAddr}/ui/dc1/kv/${fleet.kv.nodeStatus("ui1")}`);
    await page.getByText("shop").first().click();
    await page.getByText('"stack": "shop"').first().waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "ui-status-kv.png"), fullPage: true });
  });
});
