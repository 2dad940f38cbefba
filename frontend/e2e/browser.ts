import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { onTestFailed } from "vitest";

export const RESULTS = resolve(import.meta.dirname, "../test-results");

/** Debian's Chromium, headless (never a downloaded browser: `npx playwright install` is not used). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
}

/**
 * A page with its console errors collected (a test fails on unexpected ones). `trace`
 * records a Playwright trace (DOM snapshots, network, console) for `saveTrace` to keep when
 * the test fails; off for measurements, which it would slow.
 */
export async function newPage(
  browser: Browser,
  options: { colorScheme?: "light" | "dark"; width?: number; height?: number; trace?: boolean } = {},
) {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    colorScheme: options.colorScheme ?? "light",
  });
  if (options.trace === true) await context.tracing.start({ screenshots: true, snapshots: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: resolve(RESULTS, `${name}.png`), fullPage: true });
}

/** Writes the page's trace (see newPage) as `<name>.trace.zip`: `npx playwright-core show-trace <file>`. */
export async function saveTrace(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  await page.context().tracing.stop({ path: resolve(RESULTS, `${name}.trace.zip`) });
}

/**
 * A page signed in through the dashboard's `?token=` link at `path`; when the test fails, a
 * screenshot of where it was (`FAILED <test name>.png`).
 */
export async function signedInPage(browser: Browser, baseUrl: string, token: string, path: string) {
  const { page, errors } = await newPage(browser);
  onTestFailed(async ({ task }) => {
    if (!page.isClosed()) await screenshot(page, `FAILED ${task.name}`);
  });
  await page.goto(`${baseUrl}${path}?token=${token}`);
  return { page, errors };
}
