/**
 * The alert banner in headless Chromium against the real distributed stack, its API
 * evaluating one rule every second (e2e_stack.py: demo.flaky failing more than half of its
 * runs): the banner appears on the page the user is on while the rule fires, and leaves
 * when it resolves; /alerts shows the rule and the firing. Screenshots go to
 * frontend/test-results/.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { launchBrowser, newPage, screenshot } from "./browser";
import { E2EStack } from "./stack";

let stack: E2EStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([E2EStack.start({ alerts: true }), launchBrowser()]);
});

afterAll(async () => {
  await browser.close();
  await stack.stop();
});

async function runFlaky(count: number, failureRate: number): Promise<void> {
  const body = { task: "demo.flaky", count, params: { failure_rate: failureRate } };
  const { task_ids } = (await stack.api("/api/v1/demo", { method: "POST", body })) as { task_ids: string[] };
  const last = task_ids[task_ids.length - 1];
  await expect
    .poll(async () => ((await stack.api(`/api/v1/tasks/${last}`)) as { status: string }).status, { timeout: 30_000 })
    .toBe(failureRate === 1 ? "failed" : "success");
}

describe("alerts", () => {
  it("shows the banner while a rule fires and takes it away when it resolves", async () => {
    const { page, errors } = await newPage(browser);
    onTestFailed(async ({ task }) => {
      if (!page.isClosed()) await screenshot(page, `FAILED ${task.name}`);
    });
    await page.goto(`${stack.info.url}/queues?token=${stack.info.viewer}`);
    await page.getByRole("heading", { level: 1, name: "Queues" }).waitFor();
    expect(await page.getByTestId("alert-banner").count()).toBe(0);

    await runFlaky(5, 1);
    const banner = page.getByTestId("alert-banner");
    await banner.waitFor({ timeout: 30_000 });
    expect(await banner.textContent()).toContain("1 alert firing");
    expect(await banner.getByRole("link", { name: "flaky-failing" }).getAttribute("href")).toBe(
      "/monitoring?status=failed&task_name=demo.flaky",
    );
    await screenshot(page, "alerts banner firing");

    await page.getByRole("link", { name: "All alerts" }).click();
    await page.getByRole("heading", { level: 1, name: "Alerts" }).waitFor();
    const rule = page.getByTestId("alert-rule-row").filter({ hasText: "flaky-failing" });
    await rule.filter({ hasText: "firing" }).waitFor();
    expect(await page.getByTestId("alert-firing-row").count()).toBe(1);
    await screenshot(page, "alerts page firing");

    await runFlaky(20, 0); // 5 of 25 failed: under half
    await banner.waitFor({ state: "detached", timeout: 30_000 });
    await rule.filter({ hasText: "ok" }).waitFor();
    expect(await page.getByTestId("alert-firing-row").filter({ hasText: "firing" }).count()).toBe(0);
    await screenshot(page, "alerts page resolved");
    expect(errors).toEqual([]);
  });
});
