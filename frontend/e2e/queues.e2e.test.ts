/**
 * Pausing, resuming and purging a queue from the queues page, in headless Chromium against
 * the real distributed stack (API, worker, PostgreSQL, Redis), then the audit page showing
 * those actions. Screenshots go to frontend/test-results/.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, screenshot, signedInPage } from "./browser";
import { E2EStack } from "./stack";

let stack: E2EStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([E2EStack.start(), launchBrowser()]);
});

afterAll(async () => {
  await browser.close();
  await stack.stop();
});

function signedIn(path: string) {
  return signedInPage(browser, stack.info.url, stack.info.operator, path);
}

async function enqueue(priority: string, count: number): Promise<string[]> {
  const body = (await stack.api("/api/v1/demo", {
    method: "POST",
    body: { task: "demo.quick", count, priority, params: { n: 3 } },
  })) as { task_ids: string[] };
  return body.task_ids;
}

async function status(taskId: string): Promise<string> {
  return ((await stack.api(`/api/v1/tasks/${taskId}`)) as { status: string }).status;
}

function queueRow(page: Page, name: string) {
  return page.getByTestId("queue-row").filter({ hasText: new RegExp(`^${name} `) });
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe("queue controls", () => {
  it("a paused queue runs nothing until it is resumed", async () => {
    const { page, errors } = await signedIn("/queues");
    const row = queueRow(page, "default");
    await row.getByRole("button", { name: "Pause default" }).click();
    await row.getByText("paused", { exact: true }).waitFor();
    await sleep(2_000); // workers re-read the paused queues every 0.5 s; the promise is 2 s

    const [held] = await enqueue("default", 1);
    const [other] = await enqueue("high", 1);
    await expect.poll(() => status(other), { timeout: 30_000 }).toBe("success");
    await sleep(2_000);
    expect(await status(held)).toBe("pending");
    await expect.poll(async () => (await row.locator("td").nth(1).textContent()) ?? "", { timeout: 10_000 }).toBe("1");
    await screenshot(page, "queues-paused");

    await row.getByRole("button", { name: "Resume default" }).click();
    await row.getByText("active", { exact: true }).waitFor();
    await expect.poll(() => status(held), { timeout: 30_000 }).toBe("success");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a purge, confirmed with the waiting count, cancels the waiting tasks", async () => {
    await stack.api("/api/v1/queues/low/pause", { method: "POST" });
    await sleep(2_000); // as above: the pause holds within 2 s
    const waiting = await enqueue("low", 3);
    const { page, errors } = await signedIn("/queues");
    const row = queueRow(page, "low");
    await expect.poll(async () => (await row.locator("td").nth(1).textContent()) ?? "", { timeout: 10_000 }).toBe("3");

    await row.getByRole("button", { name: "Purge low" }).click();
    await row.getByText("Purge 3 waiting tasks?").waitFor();
    await screenshot(page, "queues-purge-confirm");
    await row.getByRole("button", { name: "Confirm purge" }).click();
    await row.getByText("Purged 3 waiting tasks").waitFor();
    await expect.poll(async () => (await row.locator("td").nth(1).textContent()) ?? "", { timeout: 10_000 }).toBe("0");
    for (const id of waiting) {
      await expect.poll(() => status(id), { timeout: 10_000 }).toBe("cancelled");
    }
    await screenshot(page, "queues-purged");

    await row.getByRole("button", { name: "Resume low" }).click();
    await row.getByText("active", { exact: true }).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });

  it("the audit page shows each of those actions: who, what, how many, the outcome", async () => {
    const { page, errors } = await signedIn("/audit");
    const table = page.getByRole("table", { name: "Audit log" });
    await table.waitFor();
    const rows = await table
      .locator("tbody tr")
      .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td"), (td) => td.textContent)));
    // Newest first: [when, who, action, target, count, outcome]
    const actions = rows.map(([, who, action, target, count, outcome]) => [who, action, target, count, outcome]);
    expect(actions).toEqual([
      ["ops", "resume", "low", "1", "ok"],
      ["ops", "purge", "low", "3", "ok"],
      ["ops", "pause", "low", "1", "ok"],
      ["ops", "resume", "default", "1", "ok"],
      ["ops", "pause", "default", "1", "ok"],
    ]);
    await screenshot(page, "audit-page");
    expect(errors).toEqual([]);
    await page.close();
  });
});
