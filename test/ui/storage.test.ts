// End-to-end test of the storage pages: Debian's chromium (headless, playwright-core) against
// three real `trivet serve` daemons. An Administrator creates a volume in the UI (after a brick
// path refused on its field), sees its bricks report, creates a disk image, grows it (after a
// shrink refused on the size field), uploads a small ISO made by genisoimage and sees the
// progress bar reach 100 % and the image turn "ready", verifies it (consistent), cancels an
// upload half-way and sees the half-written image gone, verifies the whole volume from its page
// (every image consistent, per image what was compared), sees a volume created from another
// node's API appear without reload, and sees the dashboard's storage card; an Auditor sees the
// pages without any action button and a forced deletion is refused. Screenshots go to
// test-results/ui/.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService, VolumeService } from "../../core/api/gen/trivet/v1/storage_pb.ts";
import { Role, UserService } from "../../core/api/gen/trivet/v1/users_pb.ts";
import { adminPassword, DaemonCluster, type DaemonNode } from "../cluster/daemon-cluster.ts";
import { login, scrollTo, shot, shotsDir, uiWaitMs } from "./pages.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const viewport = { width: 1280, height: 800 };
const buildTimeoutMs = 120_000;
/** The nodes' storage agents make the bricks and report their file systems. */
const brickReportMs = 60_000;
/** From the upload's start to the image "ready" (a couple of MiB, replicated three ways). */
const uploadWaitMs = 120_000;
/** Reading every replica of a small image and comparing checksums. */
const verifyWaitMs = 60_000;
/** From a change made through another node's API to the open page showing it, through the event stream. */
const eventShownMs = 10_000;
/** Each WriteImageContent is held this long in the cancel test, so there is time to cancel. */
const chunkDelayMs = 400;
const auditorPassword = "auditor-password-1";
/** Buttons that act (not sorting, filtering, tabs, breadcrumbs, paging). */
const actionButtons = "main button:not(thead button):not(.pf-v6-c-search-input button):not([role=tab]):not(.pf-v6-c-tabs__scroll-button):not(.pf-v6-c-breadcrumb button):not(.pf-v6-c-pagination button)";

const actionsOn = (page: Page) => page.locator(actionButtons).evaluateAll((bs) => bs.map((b) => b.getAttribute("aria-label") ?? b.textContent));
const nav = (page: Page, name: string) => page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true });

/** A small ISO 9660 image made by genisoimage (about 2 MiB: a file of random bytes inside). */
function makeIso(dir: string): string {
  const content = path.join(dir, "content");
  fs.mkdirSync(content);
  fs.writeFileSync(path.join(content, "random.bin"), crypto.randomBytes(2 * 1024 * 1024 - 4096));
  fs.writeFileSync(path.join(content, "README.TXT"), "trivet storage e2e\n");
  const iso = path.join(dir, "Test Media.iso");
  execFileSync("genisoimage", ["-quiet", "-o", iso, "-V", "TEST", content]);
  return iso;
}

describe("storage in the web UI", () => {
  const c = new DaemonCluster();
  const nodes: DaemonNode[] = [];
  let browser: Browser;
  let page: Page;
  let tmp: string;
  let iso: string;
  const url = (n: DaemonNode, p = "/") => `https://${n.http}${p}`;

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(repoRoot, "ui/build.mjs")], { cwd: repoRoot, stdio: "inherit", timeout: buildTimeoutMs });
    fs.mkdirSync(shotsDir, { recursive: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-ui-storage-"));
    iso = makeIso(tmp);
    nodes.push(...(await c.startThree()));
    const api = c.client(nodes[0]!);
    await api.call(UserService, "createUser", { username: "auditor1", password: auditorPassword, role: Role.AUDITOR });
    api.close();
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport })).newPage();
    await login(page, url(nodes[0]!), "admin", adminPassword);
  });

  afterAll(async () => {
    await browser?.close();
    await c.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("creates a volume, showing a refused brick path on its node's field first, and shows its bricks", async () => {
    await nav(page, "Storage").click();
    await page.getByText("No volume yet.").waitFor({ timeout: uiWaitMs });
    await page.getByRole("button", { name: "Create volume" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill("vol1");
    const n2Path = dialog.getByLabel("Brick path on n2");
    await n2Path.fill("relative/dir");
    await dialog.getByRole("button", { name: "Create" }).click();
    await expect.poll(() => n2Path.getAttribute("aria-invalid"), { timeout: uiWaitMs }).toBe("true");
    expect(await dialog.locator("#brick-path-n2-helper .pf-m-error").textContent()).toContain("absolute path");
    expect(await dialog.locator("#brick-path-n1-helper .pf-m-error").count()).toBe(0);
    await shot(page, "storage-volume-create-error");
    await n2Path.fill("");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "Volume vol1", level: 1 }).waitFor({ timeout: uiWaitMs });
    expect(page.url()).toBe(url(nodes[0]!, "/storage/volumes/vol1"));
    for (const n of ["n1", "n2", "n3"]) expect(await page.getByTestId(`brick-row-${n}`).locator("td").nth(1).textContent()).toBe("default");
    // The agents report each brick's file system: capacity and use fill in, and the bar shows.
    await expect.poll(() => page.getByTestId("brick-row-n3").locator("td").nth(2).textContent(), { timeout: brickReportMs }).toMatch(/\d (KiB|MiB|GiB|TiB)$/);
    await page.getByTestId("volume-usage").waitFor({ timeout: brickReportMs });
    await shot(page, "storage-volume");
  });

  it("lists the volume and shows one created through another node's API without reload", async () => {
    await page.getByRole("link", { name: "Storage", exact: true }).first().click();
    const row = page.getByTestId("volume-row-vol1");
    await row.waitFor({ timeout: uiWaitMs });
    expect(await row.locator("td").nth(1).textContent()).toBe("3");
    expect(await row.locator("td").nth(3).textContent()).toBe("n1, n2, n3");
    const api = c.client(nodes[1]!);
    try {
      await api.call(VolumeService, "createVolume", { name: "vol2", replicaCount: 2 });
    } finally {
      api.close();
    }
    await page.getByTestId("volume-row-vol2").waitFor({ timeout: eventShownMs });
    await shot(page, "storage-volumes");
    await page.getByRole("button", { name: "Delete volume vol2" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await expect.poll(() => page.getByTestId("volume-row-vol2").count(), { timeout: uiWaitMs }).toBe(0);
  });

  it("creates a replica 2 + arbiter volume from the dialog", async () => {
    await page.getByRole("button", { name: "Create volume" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill("vol3");
    await dialog.getByLabel("Replicas").selectOption("2a");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "Volume vol3", level: 1 }).waitFor({ timeout: uiWaitMs });
    await page.getByRole("link", { name: "Storage", exact: true }).first().click();
    const row = page.getByTestId("volume-row-vol3");
    await row.waitFor({ timeout: uiWaitMs });
    expect(await row.locator("td").nth(1).textContent()).toBe("2 + arbiter");
    await page.getByRole("button", { name: "Delete volume vol3" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await expect.poll(() => page.getByTestId("volume-row-vol3").count(), { timeout: uiWaitMs }).toBe(0);
  });

  it("creates a disk image, and grows it after a refused shrink shown on the size field", async () => {
    await page.getByRole("tab", { name: "Images" }).click();
    expect(page.url()).toBe(url(nodes[0]!, "/storage/images"));
    await page.getByRole("button", { name: "Create disk image" }).click();
    let dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill("disk1");
    await dialog.getByLabel("Size").fill("64 MiB");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: /^Image disk1/, level: 1 }).waitFor({ timeout: uiWaitMs });
    await expect.poll(() => page.locator("h1 [data-testid=replica-health]").textContent(), { timeout: uiWaitMs }).toBe("3/3 in sync");
    expect(await page.locator("table[aria-label=Replicas] tbody tr").count()).toBe(3);
    await shot(page, "storage-image");
    await page.getByRole("button", { name: "Resize" }).click();
    dialog = page.getByRole("dialog");
    const size = dialog.getByLabel("New size");
    await size.fill("32 MiB");
    await dialog.getByRole("button", { name: "Resize" }).click();
    await expect.poll(() => size.getAttribute("aria-invalid"), { timeout: uiWaitMs }).toBe("true");
    expect(await dialog.locator("#image-new-size-helper .pf-m-error").textContent()).toContain("can only grow");
    await size.fill("128 MiB");
    await dialog.getByRole("button", { name: "Resize" }).click();
    await expect.poll(() => page.locator("dl[aria-label=Image]").textContent(), { timeout: uiWaitMs }).toContain("128 MiB (134217728 bytes)");
  });

  it("uploads an ISO with a progress bar to 100 %, then verifies it: consistent", async () => {
    await nav(page, "Storage").click();
    await page.getByRole("tab", { name: "ISO library" }).click();
    await page.getByText("No ISO or template yet.").waitFor({ timeout: uiWaitMs });
    await page.getByRole("button", { name: "Upload ISO" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.locator("#iso-file").setInputFiles(iso);
    expect(await dialog.getByLabel("Image name").inputValue()).toBe("test-media.iso");
    await dialog.getByRole("button", { name: "Upload", exact: true }).click();
    const bar = dialog.getByTestId("upload-progress");
    await expect.poll(() => bar.textContent(), { timeout: uploadWaitMs }).toMatch(/\(100%\)/);
    await dialog.getByText("test-media.iso is ready").waitFor({ timeout: uploadWaitMs });
    const isoBytes = fs.statSync(iso).size;
    expect(await bar.getByRole("progressbar").getAttribute("aria-valuenow")).toBe("100");
    expect(await bar.textContent()).toContain("(100%)");
    await shot(page, "storage-iso-uploaded");
    await dialog.getByRole("button", { name: "Done" }).click();
    const row = page.getByTestId("image-row-vol1-test-media.iso");
    await expect.poll(() => row.getByTestId("image-state").textContent(), { timeout: uiWaitMs }).toBe("ready");
    expect(await row.locator("td").nth(2).textContent()).toBe("iso");
    const api = c.client(nodes[2]!);
    try {
      const got = await api.call(ImageService, "getImage", { volume: "vol1", name: "test-media.iso" });
      expect(Number(got.image?.sizeBytes)).toBe(Math.ceil(isoBytes / 512) * 512);
    } finally {
      api.close();
    }
    await shot(page, "storage-iso-library");
    await page.getByRole("button", { name: "Actions of test-media.iso" }).click();
    await page.getByRole("menuitem", { name: "Verify" }).click();
    const result = page.getByRole("dialog").getByTestId("verify-result");
    await result.waitFor({ timeout: verifyWaitMs });
    expect(await result.textContent()).toContain("Consistent: 3 replicas read, no chunk differs");
    expect(await result.textContent()).not.toContain("Not consistent");
    await shot(page, "storage-verify");
    await page.getByRole("dialog").getByRole("button", { name: "Done" }).click();
  });

  it("cancels an upload half-way and deletes the half-written image", async () => {
    const big = path.join(tmp, "big.iso");
    fs.writeFileSync(big, crypto.randomBytes(8 * 1024 * 1024));
    let chunks = 0;
    await page.route("**/ImageService/WriteImageContent", async (r) => {
      chunks++;
      await new Promise((res) => setTimeout(res, chunkDelayMs));
      await r.continue();
    });
    try {
      await page.getByRole("button", { name: "Upload ISO" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.locator("#iso-file").setInputFiles(big);
      await dialog.getByRole("button", { name: "Upload", exact: true }).click();
      await expect.poll(() => dialog.getByTestId("upload-progress").getByRole("progressbar").getAttribute("aria-valuenow"), { timeout: uploadWaitMs }).not.toBe("0");
      await shot(page, "storage-iso-uploading");
      await dialog.getByRole("button", { name: "Cancel upload" }).click();
      await dialog.getByTestId("upload-notice").waitFor({ timeout: uploadWaitMs });
      expect(await dialog.getByTestId("upload-notice").textContent()).toContain("big.iso was deleted");
      expect(chunks).toBeLessThan(16);
      await dialog.getByRole("button", { name: "Cancel" }).click();
    } finally {
      await page.unroute("**/ImageService/WriteImageContent");
    }
    await expect.poll(() => page.getByTestId("image-row-vol1-big.iso").count(), { timeout: uiWaitMs }).toBe(0);
    const api = c.client(nodes[0]!);
    try {
      const names = (await api.call(ImageService, "listImages", { volume: "vol1" })).images.map((i) => i.name).sort();
      expect(names).toEqual(["disk1", "test-media.iso"]);
    } finally {
      api.close();
    }
  });

  it("verifies the whole volume from its page: every image consistent, with what was compared", async () => {
    await page.goto(url(nodes[0]!, "/storage/volumes/vol1"));
    await page.getByTestId("brick-row-n1").waitFor({ timeout: uiWaitMs });
    await page.getByRole("button", { name: "Verify", exact: true }).click();
    const result = page.getByRole("dialog").getByTestId("volume-verify-result");
    await result.waitFor({ timeout: verifyWaitMs });
    expect(await result.getByRole("heading").first().textContent()).toContain("Consistent: 2 image(s) verified, 0 skipped");
    const cells = async (name: string) => result.getByTestId(`verify-row-${name}`).locator("td").allTextContents();
    expect(await cells("disk1")).toEqual(["disk1", "consistent", "n1, n2, n3", "128", "—", "—"]);
    expect((await cells("test-media.iso")).slice(1, 3)).toEqual(["consistent", "n1, n2, n3"]);
    await shot(page, "storage-volume-verify");
    await page.getByRole("dialog").getByRole("button", { name: "Done" }).click();
  });

  it("shows the cluster's storage on the dashboard", async () => {
    await nav(page, "Dashboard").click();
    const card = page.getByTestId("dash-storage");
    await expect.poll(() => card.textContent(), { timeout: uiWaitMs }).toMatch(/\d (MiB|GiB|TiB) of \d+(\.\d+)? (GiB|TiB)/);
    await page.getByRole("img", { name: /^Storage used: cluster / }).waitFor({ timeout: uiWaitMs });
    await scrollTo(page.getByTestId("chart-storage"));
    await shot(page, "dashboard-storage");
  });

  it("shows an Auditor the storage pages without any action button and refuses a forced deletion", async () => {
    const p = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport })).newPage();
    await login(p, url(nodes[1]!, "/storage"), "auditor1", auditorPassword);
    await p.getByTestId("volume-row-vol1").waitFor({ timeout: uiWaitMs });
    expect(await actionsOn(p)).toEqual([]);
    await shot(p, "storage-volumes-auditor");
    for (const [tab, row] of [["Images", "image-row-vol1-disk1"], ["ISO library", "image-row-vol1-test-media.iso"]] as const) {
      await p.getByRole("tab", { name: tab }).click();
      await p.getByTestId(row).waitFor({ timeout: uiWaitMs });
      expect(await actionsOn(p)).toEqual([]);
    }
    await shot(p, "storage-iso-library-auditor");
    await p.getByRole("tab", { name: "Images" }).click();
    await p.getByTestId("image-row-vol1-disk1").getByRole("link", { name: "disk1" }).click();
    await p.locator("table[aria-label=Replicas]").waitFor({ timeout: uiWaitMs });
    expect(await actionsOn(p)).toEqual([]);
    await p.goto(url(nodes[1]!, "/storage/volumes/vol1"));
    await p.getByTestId("brick-row-n1").waitFor({ timeout: uiWaitMs });
    expect(await actionsOn(p)).toEqual([]);
    const forced = await p.evaluate(async () => {
      const res = await fetch("/api/v1/ImageService/DeleteImage", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage.getItem("trivet.csrf") ?? "" },
        body: JSON.stringify({ volume: "vol1", name: "disk1" }),
      });
      return { status: res.status, body: await res.json() as { error?: { code?: string; reason?: string } } };
    });
    expect(forced.status).toBe(403);
    expect(forced.body.error).toMatchObject({ code: "permission_denied", reason: "storage.manage" });
    await p.close();
  });
});
