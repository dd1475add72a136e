// End-to-end test of the virtual machine pages: Debian's chromium (headless, playwright-core)
// against three real `trivet serve` daemons. Creates a VM with the test guest in the wizard
// (after a validation error shown on its field), starts it and sees it turn running without a
// reload, reads the guest through the serial console tab (xterm.js over the console WebSocket,
// on the node the VM runs on), sees the graphics console tab say the VM has no display (and is
// stopped, after it is), stops it and sees it stopped; an Auditor sees no action button.
// Screenshots go to test-results/ui/.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { VmService } from "../../core/api/gen/trivet/v1/vm_pb.ts";
import { login, scrollTo, shot, shotsDir, uiWaitMs } from "./pages.ts";
import { adminPassword, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { ensureGuest, type GuestImage } from "../guest/guest.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const viewport = { width: 1280, height: 800 };
/** Host agents report their facts (needed to place a VM) shortly after the daemons start. */
const hostsReadyMs = 60_000;
/** From StartVm to "running" as the agent reports it, on a loaded 2-core machine. */
const runningWaitMs = 60_000;
/** TCG boot of the test guest to its shell, then the answer on the console. */
const consoleWaitMs = 120_000;
const buildTimeoutMs = 120_000;
/** From the API reporting the VM running to the open list showing it, through the event stream. */
const eventShownMs = 10_000;
/** Where the UI opens the event stream (ui/src/api/events.ts). */
const watchPath = "/api/v1/trivet.v1.EventService/Watch";
const auditorPassword = "auditor-password-1";
const actionButtons = "main button:not(thead button):not(.pf-v6-c-search-input button):not([role=tab]):not(.pf-v6-c-breadcrumb button):not(.pf-v6-c-pagination button)";


/** The action buttons on a page, by label (empty for an Auditor). */
const actionsOn = (page: Page) => page.locator(actionButtons).evaluateAll((bs) => bs.map((b) => b.getAttribute("aria-label") ?? b.textContent));

const stateOf = (page: Page) => page.locator("h1 [data-testid=vm-state]").textContent();

describe("virtual machines in the web UI", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let image: GuestImage;
  let browser: Browser;
  let page: Page;
  const url = (n: DaemonNode, p = "/") => `https://${n.http}${p}`;

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(repoRoot, "ui/build.mjs")], { cwd: repoRoot, stdio: "inherit", timeout: buildTimeoutMs });
    fs.mkdirSync(shotsDir, { recursive: true });
    image = await ensureGuest();
    nodes.push(...(await c.startThree()));
    const api = c.client(nodes[0]!);
    await api.call(UserService, "createUser", { username: "auditor1", password: auditorPassword, role: Role.AUDITOR });
    // A VM can be placed once the host agents have reported their facts: wait for that here so
    // the wizard's answer is about the form, not about the cluster still starting.
    await DaemonCluster.retry(() => api.call(VmService, "createVm", { name: "probe", config: { vcpus: 1, memoryMib: 16n } }), hostsReadyMs);
    await api.call(VmService, "deleteVm", { name: "probe" });
    api.close();
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport })).newPage();
  });

  afterAll(async () => {
    await browser?.close();
    // A guest left running by a failed test: stopped through the API before the daemons go.
    if (nodes[0]) {
      const api = c.client(nodes[0]);
      await api.call(VmService, "stopVm", { name: "uivm1" }).catch(() => undefined);
      api.close();
    }
    await c.stop();
  });

  it("creates a VM in the wizard, showing the API's validation error on the field", async () => {
    await login(page, url(nodes[0]!, "/vms"), "admin", adminPassword);
    await page.getByRole("heading", { name: "Virtual machines", level: 1 }).waitFor({ timeout: uiWaitMs });
    await page.getByText("No virtual machines yet.").waitFor({ timeout: uiWaitMs });
    await page.getByRole("button", { name: "New virtual machine" }).click();
    const wizard = page.getByRole("dialog", { name: "New virtual machine" });
    await wizard.getByLabel("Name").fill("uivm1");
    await wizard.getByLabel("Memory (MiB)").fill("256");
    await shot(page, "vm-wizard-basics");
    await wizard.getByRole("button", { name: "Next" }).click();
    await wizard.getByLabel("Kernel path").fill("vmlinuz");
    await wizard.getByLabel("Initrd path").fill(image.initrd);
    await wizard.getByLabel("Kernel command line").fill("console=ttyS0 quiet panic=-1");
    await wizard.getByRole("button", { name: "Next" }).click();
    await wizard.getByRole("button", { name: "Next" }).click();
    await shot(page, "vm-wizard-review");
    await wizard.getByRole("button", { name: "Create" }).click();
    // The API refuses the relative path, naming the field: the wizard goes back to its step.
    await wizard.getByText("must be an absolute path on the nodes").waitFor({ timeout: uiWaitMs });
    expect(await wizard.getByLabel("Kernel path").getAttribute("aria-invalid")).toBe("true");
    await shot(page, "vm-wizard-error");
    await wizard.getByLabel("Kernel path").fill(image.kernel);
    await wizard.getByRole("button", { name: "Next" }).click();
    await wizard.getByRole("button", { name: "Next" }).click();
    await wizard.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: /^uivm1/, level: 1 }).waitFor({ timeout: uiWaitMs });
    expect(page.url()).toBe(url(nodes[0]!, "/vms/uivm1"));
    await expect.poll(() => stateOf(page), { timeout: runningWaitMs }).toBe("stopped");
  });

  it("starts the VM and shows it running without a reload, then its serial console", async () => {
    await page.getByRole("button", { name: "Start", exact: true }).click();
    await expect.poll(() => stateOf(page), { timeout: runningWaitMs }).toBe("running");
    await shot(page, "vm-detail-running");
    const vmNode = (await page.getByTestId("vm-node").textContent())!;
    const node = nodes.find((n) => n.name === vmNode)!;
    await page.getByRole("tab", { name: "Serial console" }).click();
    if (node !== nodes[0]) {
      await page.getByText(`The console of uivm1 opens on node ${vmNode}`).waitFor({ timeout: uiWaitMs });
      await shot(page, "vm-console-other-node");
      await login(page, url(node, "/vms/uivm1"), "admin", adminPassword);
      await page.getByRole("tab", { name: "Serial console" }).click();
    }
    await page.getByTestId("console-phase").getByText("connected").waitFor({ timeout: uiWaitMs });
    const screen = page.getByTestId("serial-console");
    // The boot marker may have scrolled by before the console opened: ask the guest's shell.
    await expect.poll(async () => {
      await screen.click();
      await page.keyboard.type("echo hi-$((40+2))\n");
      return (await screen.locator(".xterm-rows").textContent()) ?? "";
    }, { timeout: consoleWaitMs, interval: 5_000 }).toContain("hi-42");
    await shot(page, "vm-console");
  });

  it("says plainly that the running test VM has no graphics display (noVNC loaded on demand)", async () => {
    const chunk = page.waitForResponse((r) => /\/assets\/VncConsole-[^/]+\.js$/.test(new URL(r.url()).pathname), { timeout: uiWaitMs });
    await page.getByRole("tab", { name: "Graphics console" }).click();
    expect((await chunk).status()).toBe(200);
    // The wizard's VM runs without `display: vnc`: the node refuses the VNC console.
    await page.getByTestId("vnc-closed").waitFor({ timeout: uiWaitMs });
    expect(await page.getByTestId("vnc-phase").textContent()).toBe("disconnected");
    expect(await page.getByTestId("vnc-closed").textContent()).toMatch(/graphics (display|console)/);
    await shot(page, "vm-graphics-none");
  });

  it("charts the running VM's vCPU and memory on the dashboard", async () => {
    await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Dashboard" }).click();
    await expect.poll(() => page.getByTestId("dash-vms-running").textContent(), { timeout: uiWaitMs }).toBe("1");
    await page.getByRole("img", { name: /^vCPUs of running VMs: cluster 1, / }).waitFor({ timeout: uiWaitMs });
    await page.getByRole("img", { name: /^Memory of running VMs: cluster 256 MiB, / }).waitFor({ timeout: uiWaitMs });
    await scrollTo(page.getByTestId("chart-vcpus"));
    await shot(page, "dashboard-vm-running");
  });

  it("lists the running VM, stops it from the list and shows it stopped", async () => {
    await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Virtual machines" }).click();
    const row = page.getByTestId("vm-row-uivm1");
    await expect.poll(() => row.getByTestId("vm-state").textContent(), { timeout: uiWaitMs }).toBe("running");
    await row.getByRole("checkbox").check();
    await shot(page, "vm-list");
    await page.getByRole("button", { name: "Force stop selected" }).click();
    await expect.poll(() => row.getByTestId("vm-state").textContent(), { timeout: runningWaitMs }).toBe("stopped");
    await shot(page, "vm-list-stopped");
    await row.getByRole("link", { name: "uivm1" }).click();
    await page.getByRole("tab", { name: "Graphics console" }).click();
    await page.getByTestId("vnc-not-running").getByText("uivm1 is stopped").waitFor({ timeout: uiWaitMs });
    await shot(page, "vm-graphics-stopped");
  });

  it("shows a VM started through the API running in the open list, from the event stream", async () => {
    // The page's clock is paused once the list has loaded, so its fallback poll (15 s) cannot
    // run at all: only an event on the stream can make the list load again.
    await page.clock.install();
    const watch = page.waitForResponse((r) => new URL(r.url()).pathname === watchPath, { timeout: uiWaitMs });
    await page.goto(url(nodes[0]!, "/vms"));
    const res = await watch;
    expect(res.status()).toBe(200);
    expect(res.headers()["content-type"]).toContain("text/event-stream");
    expect(res.request().method()).toBe("GET");
    const row = page.getByTestId("vm-row-uivm1");
    await expect.poll(() => row.getByTestId("vm-state").textContent(), { timeout: uiWaitMs }).toBe("stopped");
    await page.clock.pauseAt(await page.evaluate(() => Date.now() + 1_000));
    const lists: number[] = [];
    page.on("request", (r) => { if (r.url().endsWith("/VmService/ListVms")) lists.push(Date.now()); });
    const api = c.client(nodes[1]!);
    try {
      await api.call(VmService, "startVm", { name: "uivm1" });
      await expect.poll(async () => (await api.call(VmService, "getVm", { name: "uivm1" })).vm?.status?.state, { timeout: runningWaitMs }).toBe("running");
    } finally {
      api.close();
    }
    await expect.poll(() => row.getByTestId("vm-state").textContent(), { timeout: eventShownMs }).toBe("running");
    expect(lists.length).toBeGreaterThan(0);
    await shot(page, "vm-list-live");
    await page.clock.resume();
  });

  it("shows an Auditor the VM without any action button", async () => {
    const p = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport })).newPage();
    await login(p, url(nodes[1]!, "/vms/uivm1"), "auditor1", auditorPassword);
    await p.getByRole("heading", { name: /^uivm1/, level: 1 }).waitFor({ timeout: uiWaitMs });
    await p.getByTestId("vm-node").waitFor({ timeout: uiWaitMs });
    expect(await actionsOn(p)).toEqual([]);
    expect(await p.getByRole("tab", { name: /console/i }).count()).toBe(0);
    await shot(p, "vm-detail-auditor");
    await p.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Virtual machines" }).click();
    await p.getByTestId("vm-row-uivm1").waitFor({ timeout: uiWaitMs });
    expect(await actionsOn(p)).toEqual([]);
    await p.close();
  });
});
