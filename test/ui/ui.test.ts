// End-to-end tests of the web UI: Debian's chromium (headless, driven by playwright-core)
// against a real three-node cluster of `trivet serve` daemons, each serving the UI on its HTTPS
// port. Covers login, the dashboard and nodes pages, creating a user (with a validation error
// on the field), the audit log, a node going down while the UI keeps working and another
// node's UI taking over, session expiry, and an Auditor who sees no actions and whose forced
// mutation is refused; the dashboard's charts, a node's detail and its host shell, the Tasks and
// events page, and the Users and Audit pages following the event stream. Screenshots of the
// main pages go to test-results/ui/.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { login, scrollTo, shot, shotsDir, uiWaitMs } from "./pages.ts";
import { adminPassword, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const viewport = { width: 1280, height: 800 };
/** Longest wait for something the UI shows after an action (a page load, a refresh). */
/** A killed node's heartbeats stop; it is reported unreachable after the lease (about 6 s) plus a refresh. */
const nodeDownWaitMs = 45_000;
const auditorPassword = "auditor-password-1";
/** From a change made through another node's API to the open page showing it, through the event stream. */
const eventShownMs = 10_000;
/** The node's login shell starting (bash -l) and answering a command. */
const shellWaitMs = 30_000;
const buildTimeoutMs = 120_000;
/** Buttons in a page's content other than column sorting and the filter box: actions. */
const actionButtons = "main button:not(thead button):not(.pf-v6-c-search-input button)";


function nav(page: Page, name: string) {
  return page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true });
}

describe("the web UI on a three-node cluster", () => {
  const c = new DaemonCluster();
  let n1: DaemonNode, n2: DaemonNode, n3: DaemonNode;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  const url = (n: DaemonNode, p = "/") => `https://${n.http}${p}`;

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(repoRoot, "ui/build.mjs")], { cwd: repoRoot, stdio: "inherit", timeout: buildTimeoutMs });
    fs.mkdirSync(shotsDir, { recursive: true });
    n1 = await c.allocate("n1");
    n2 = await c.allocate("n2");
    n3 = await c.allocate("n3");
    c.init(n1);
    c.serve(n1);
    await c.login(n1);
    for (const [n, voters] of [[n2, 1], [n3, 3]] as const) {
      const r = c.join(n, await c.token(n1));
      expect(r.code, r.stderr).toBe(0);
      c.serve(n);
      await c.waitForVoters(n1, voters);
    }
    const api = c.client(n1);
    await api.call(UserService, "createUser", { username: "auditor1", password: auditorPassword, role: Role.AUDITOR });
    api.close();
    // Playwright's launch gives the browser a fresh profile (its own --user-data-dir) each run.
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    admin = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
    page = await admin.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await c.stop();
  });

  it("refuses a wrong password, then logs in and shows three nodes and a leader", async () => {
    await page.goto(url(n1));
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill("not-the-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText(/wrong username or password/i).waitFor({ timeout: uiWaitMs });
    await shot(page, "login-error");
    await login(page, url(n1), "admin", adminPassword);
    await page.getByRole("heading", { name: "Dashboard", level: 1 }).waitFor({ timeout: uiWaitMs });
    await expect.poll(() => page.getByTestId("dash-nodes-up").textContent(), { timeout: uiWaitMs }).toBe("3");
    expect(await page.getByTestId("dash-nodes-down").textContent()).toBe("0");
    expect(["n1", "n2", "n3"]).toContain(await page.getByTestId("dash-leader").textContent());
    expect(await page.getByTestId("dash-quorum").textContent()).toMatch(/^Yes: 3 of 3 voters up/);
    expect(await page.getByTestId("cluster-name").textContent()).toContain("test");
    await expect.poll(() => page.getByTestId("dash-vms-total").textContent(), { timeout: uiWaitMs }).toBe("0");
    // The charts: accessible SVGs whose label says the latest value, one line per node and the cluster.
    const cpu = page.getByRole("img", { name: /^vCPUs of running VMs: cluster 0, n1 0, n2 0, n3 0$/ });
    await cpu.waitFor({ timeout: uiWaitMs });
    expect(await cpu.locator("path[data-series]").evaluateAll((ps) => ps.map((p) => [p.getAttribute("data-series"), /^M[\d.]+ [\d.]+/.test(p.getAttribute("d") ?? "")])))
      .toEqual([["cluster", true], ["n1", true], ["n2", true], ["n3", true]]);
    expect(await cpu.locator("desc").textContent()).toMatch(/over the last 30 minutes/);
    await page.getByRole("img", { name: /^Memory of running VMs: cluster 0 MiB/ }).waitFor({ timeout: uiWaitMs });
    await expect.poll(() => page.getByTestId("chart-storage").textContent(), { timeout: uiWaitMs }).toContain("No volume yet");
    await shot(page, "dashboard");
    // The console scrolls inside its main area: the lower half of the dashboard is a shot of its own.
    await scrollTo(page.getByTestId("dash-events"));
    await shot(page, "dashboard-lower");
    await page.getByRole("button", { name: "Switch to dark theme" }).click();
    expect(await page.locator("html.pf-v6-theme-dark").count()).toBe(1);
    await shot(page, "dashboard-dark");
    await page.getByRole("button", { name: "Switch to light theme" }).click();
    expect(await page.locator("html.pf-v6-theme-dark").count()).toBe(0);
  });

  it("lists n1..n3 on the nodes page, sortable and filterable", async () => {
    await nav(page, "Nodes").click();
    const names = () => page.locator("[data-testid^=node-row-] td:first-child").allTextContents();
    await expect.poll(names, { timeout: uiWaitMs }).toEqual(["n1", "n2", "n3"]);
    await page.getByRole("button", { name: "Name" }).click();
    await expect.poll(names, { timeout: uiWaitMs }).toEqual(["n3", "n2", "n1"]);
    await page.getByLabel("Filter nodes").fill("n2");
    await expect.poll(names, { timeout: uiWaitMs }).toEqual(["n2"]);
    await page.getByLabel("Filter nodes").fill("");
    await expect.poll(names, { timeout: uiWaitMs }).toHaveLength(3);
    expect(await page.locator("[data-testid^=node-row-]", { hasText: "Leader" }).count()).toBe(1);
    expect(page.url()).toBe(url(n1, "/nodes"));
    await shot(page, "nodes");
  });

  it("shows a node's detail and opens a login shell on it for an Administrator", async () => {
    await page.getByTestId("node-row-n1").getByRole("link", { name: "n1" }).click();
    await page.getByRole("heading", { name: /^n1/, level: 1 }).waitFor({ timeout: uiWaitMs });
    expect(page.url()).toBe(url(n1, "/nodes/n1"));
    expect(await page.getByTestId("node-vm-count").textContent()).toBe("0");
    await shot(page, "node-detail");
    await page.getByRole("tab", { name: "Shell" }).click();
    await page.getByTestId("console-phase").getByText("connected").waitFor({ timeout: uiWaitMs });
    const screen = page.getByTestId("host-shell");
    await expect.poll(async () => {
      await screen.click();
      await page.keyboard.type("echo trivet-$((6*7))\n");
      return (await screen.locator(".xterm-rows").textContent()) ?? "";
    }, { timeout: shellWaitMs, interval: 2_000 }).toContain("trivet-42");
    await shot(page, "node-shell");
    // Another node's shell opens on that node's own web console: this one says so.
    await page.goto(url(n1, "/nodes/n2"));
    await page.getByRole("tab", { name: "Shell" }).click();
    await page.getByText("A shell on n2 opens on node n2").waitFor({ timeout: uiWaitMs });
  });

  it("creates a user, showing the API's validation error on the username field first", async () => {
    await nav(page, "Users").click();
    await page.getByRole("button", { name: "Create user" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Username").fill("Bad Name!");
    await dialog.getByLabel("Password").fill("a-long-enough-password");
    await dialog.getByRole("button", { name: "Create" }).click();
    const userField = dialog.getByLabel("Username");
    await expect.poll(() => userField.getAttribute("aria-invalid"), { timeout: uiWaitMs }).toBe("true");
    // The API's reason, on the username field, in the error style (not the hint).
    expect(await dialog.locator("#new-username-helper .pf-m-error").textContent()).toContain('"Bad Name!"');
    expect(await dialog.locator("#new-password-helper .pf-m-error").count()).toBe(0);
    await shot(page, "users-validation-error");
    await userField.fill("alice");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.getByTestId("user-row-alice").waitFor({ timeout: uiWaitMs });
    expect(await page.getByRole("dialog").count()).toBe(0);
    await shot(page, "users");
  });

  it("shows the creation in the audit log", async () => {
    await nav(page, "Audit log").click();
    const row = page.getByRole("row", { name: /UserService\.CreateUser.*user\/alice.*ok/ });
    await row.first().waitFor({ timeout: uiWaitMs });
    // The refused attempt with the bad username is not a mutation that ran: only "ok" is asserted.
    await shot(page, "audit");
  });

  it("lists the stream's events live on the Tasks and events page, filterable by kind", async () => {
    await nav(page, "Tasks and events").click();
    await page.getByTestId("tasks-none").waitFor({ timeout: uiWaitMs });
    const api = c.client(n2);
    try {
      await api.call(UserService, "createUser", { username: "dave", password: "dave-password-12", role: Role.OPERATOR });
    } finally {
      api.close();
    }
    const row = page.getByTestId("events-table").getByRole("row", { name: /audit.*user\/dave.*UserService\.CreateUser/ });
    await row.waitFor({ timeout: eventShownMs });
    await page.getByLabel("Event kind").selectOption("node.health");
    expect(await row.count()).toBe(0);
    await page.getByLabel("Event kind").selectOption("audit");
    await row.waitFor({ timeout: uiWaitMs });
    expect(await page.locator("[data-testid=events-table] tbody tr[data-kind]").evaluateAll((rs) => rs.every((r) => r.getAttribute("data-kind") === "audit"))).toBe(true);
    await shot(page, "events");
    await page.getByRole("tab", { name: "Audit log" }).click();
    await page.getByRole("row", { name: /UserService\.CreateUser.*user\/dave.*ok/ }).first().waitFor({ timeout: uiWaitMs });
  });

  it("updates the open Users and Audit pages from the event stream alone", async () => {
    const p = await admin.newPage();
    // Paused once loaded, the page's clock runs no fallback poll: only events can reload it.
    await p.clock.install();
    await p.goto(url(n1, "/users"));
    await p.getByTestId("user-row-alice").waitFor({ timeout: uiWaitMs });
    await p.clock.pauseAt(await p.evaluate(() => Date.now() + 1_000));
    const api = c.client(n2);
    try {
      await api.call(UserService, "createUser", { username: "bob", password: "bob-password-123", role: Role.OPERATOR });
      await p.getByTestId("user-row-bob").waitFor({ timeout: eventShownMs });
      await nav(p, "Audit log").click();
      await p.getByRole("row", { name: /user\/bob/ }).first().waitFor({ timeout: uiWaitMs });
      await api.call(UserService, "deleteUser", { username: "bob" });
      await p.getByRole("row", { name: /UserService\.DeleteUser.*user\/bob.*ok/ }).first().waitFor({ timeout: eventShownMs });
    } finally {
      api.close();
    }
    await p.clock.resume();
    await p.close();
  });

  it("reports a killed node as down while the UI keeps working, and another node's UI works", async () => {
    await nav(page, "Dashboard").click();
    await c.kill(n3);
    await expect.poll(() => page.getByTestId("dash-nodes-down").textContent(), { timeout: nodeDownWaitMs, interval: 1000 }).toBe("1");
    expect(await page.getByTestId("dash-node-n3").textContent()).toContain("Down");
    await expect.poll(() => page.getByTestId("dash-leader").textContent(), { timeout: nodeDownWaitMs, interval: 1000 }).toMatch(/^n[12]$/);
    await shot(page, "dashboard-node-down");
    await nav(page, "Nodes").click();
    await expect.poll(() => page.getByTestId("node-row-n3").locator("[data-health]").textContent(), { timeout: uiWaitMs }).toBe("Down");
    await shot(page, "nodes-node-down");
    await nav(page, "Users").click();
    await page.getByTestId("user-row-alice").waitFor({ timeout: uiWaitMs });

    const other = await admin.newPage();
    await login(other, url(n2, "/nodes"), "admin", adminPassword);
    await nav(other, "Nodes").click();
    await expect.poll(() => other.getByTestId("node-row-n3").locator("[data-health]").textContent(), { timeout: uiWaitMs }).toBe("Down");
    expect(await other.getByTestId("cluster-name").textContent()).toContain("via n2");
    await other.close();
  });

  it("goes back to the login page with a message when the session ends; signs in by keyboard", async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
    const p = await ctx.newPage();
    await login(p, url(n1), "admin", adminPassword);
    await ctx.clearCookies();
    await nav(p, "Users").click();
    await p.getByRole("button", { name: "Sign in" }).waitFor({ timeout: uiWaitMs });
    expect(await p.getByText(/Your session has ended/).count()).toBe(1);
    expect(await p.getByRole("navigation", { name: "Console" }).count()).toBe(0);
    await shot(p, "session-ended");
    // Signing in again with the keyboard alone: the username field has the focus.
    await p.keyboard.type("admin");
    await p.keyboard.press("Tab");
    await p.keyboard.type(adminPassword);
    await p.keyboard.press("Enter");
    await p.getByRole("navigation", { name: "Console" }).waitFor({ timeout: uiWaitMs });
    await ctx.close();
  });

  it("shows an Auditor no action buttons and refuses a forced mutation", async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
    const p = await ctx.newPage();
    await login(p, url(n2), "auditor1", auditorPassword);
    await nav(p, "Users").click();
    await p.getByTestId("user-row-alice").waitFor({ timeout: uiWaitMs });
    expect(await p.getByRole("button", { name: "Create user" }).count()).toBe(0);
    expect(await p.getByRole("button", { name: /^Delete/ }).count()).toBe(0);
    expect(await p.locator(actionButtons).count()).toBe(0);
    await shot(p, "auditor-users");
    await nav(p, "Nodes").click();
    await p.getByTestId("node-row-n1").waitFor({ timeout: uiWaitMs });
    expect(await p.locator(actionButtons).count()).toBe(0);

    const forced = await p.evaluate(async () => {
      const res = await fetch("/api/v1/UserService/CreateUser", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage.getItem("trivet.csrf") ?? "" },
        body: JSON.stringify({ username: "mallory", password: "mallory-password-1", role: "ROLE_ADMINISTRATOR" }),
      });
      return { status: res.status, body: await res.json() as { error?: { code?: string; reason?: string } } };
    });
    expect(forced.status).toBe(403);
    expect(forced.body.error).toMatchObject({ code: "permission_denied", reason: "users.manage" });

    await p.getByRole("button", { name: "User menu of auditor1" }).click();
    await p.getByRole("menuitem", { name: "Sign out" }).click();
    await p.getByText("You have signed out.").waitFor({ timeout: uiWaitMs });
    const after = await p.evaluate(async () => (await fetch("/api/v1/AuthService/WhoAmI", { method: "POST", body: "{}" })).status);
    expect(after).toBe(401);
    await ctx.close();
  });
});
