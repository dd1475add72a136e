// Helpers both UI end-to-end suites share: screenshots into test-results/ui, and signing in.
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Locator, Page } from "playwright-core";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const shotsDir = path.join(repoRoot, "test-results/ui");
export const uiWaitMs = 15_000;

export async function shot(page: Page, name: string): Promise<void> {
  // Transitions finished first: a shot right after a theme switch would catch them halfway.
  await page.screenshot({ path: path.join(shotsDir, `${name}.png`), fullPage: true, animations: "disabled" });
}

/**
 * Scrolls an element into view for a shot. Live panels (the dashboard's charts and event list)
 * re-render while Playwright waits for them to be "stable", and its scrollIntoViewIfNeeded then
 * fails with "not attached to the DOM"; an evaluate finds the current element and scrolls it in
 * one step. Waits (bounded) for the element first.
 */
export async function scrollTo(target: Locator): Promise<void> {
  await target.waitFor({ timeout: uiWaitMs });
  await target.evaluate((el) => el.scrollIntoView({ block: "start" }), undefined, { timeout: uiWaitMs });
}

export async function login(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Console" }).waitFor({ timeout: uiWaitMs });
}
