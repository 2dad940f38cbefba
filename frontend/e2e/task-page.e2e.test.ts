/**
 * Finding one task and its page, in headless Chromium against the real distributed stack:
 * from a live feed entry to the task page, which reloads by its address (also from a feed
 * opened after the task ran: the backfill, filtered and paused); and a search of the history
 * by the first characters of a task id. Screenshots go to frontend/test-results/.
 */
import type { Browser } from "playwright-core";
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

async function enqueue(task: string, params: Record<string, unknown>): Promise<string> {
  const body = (await stack.api("/api/v1/demo", { method: "POST", body: { task, count: 1, params } })) as {
    task_ids: string[];
  };
  return body.task_ids[0];
}

async function waitForStatus(id: string, status: string): Promise<void> {
  await expect
    .poll(async () => ((await stack.api(`/api/v1/tasks/${id}`)) as { status: string }).status, { timeout: 30_000 })
    .toBe(status);
}

describe("task page", () => {
  it("opens from a feed entry, shows the failure, and reloads by its address", async () => {
    const { page, errors } = await signedIn("/monitoring");
    await page.getByTestId("connection-state").first().filter({ hasText: "live" }).waitFor();
    const id = await enqueue("demo.flaky", { failure_rate: 1, record_id: 42 });

    const entry = page.locator(`[data-event-key="${id}:1:failed"]`);
    await entry.waitFor({ timeout: 30_000 });
    await entry.getByRole("link", { name: "demo.flaky" }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/tasks/${id}`);

    await page.getByRole("heading", { level: 1, name: "demo.flaky" }).waitFor();
    await page.getByTestId("task-status").filter({ hasText: "failed" }).waitFor();
    expect(await page.getByTestId("task-error").textContent()).toBe("DemoFailure: could not import record 42");
    const steps = await page.getByTestId("timeline-step").allTextContents();
    expect(steps[0]).toMatch(/^Enqueued/);
    expect(steps).toContainEqual(expect.stringMatching(/^Waited in the queue \d/));
    expect(steps.at(-1)).toMatch(/^Failed: DemoFailure: could not import record 42/);
    expect(JSON.parse((await page.getByTestId("task-params").textContent())!)).toEqual({
      failure_rate: 1,
      record_id: 42,
    });
    expect(await page.getByTestId("traceback").textContent()).toContain("ValueError: invalid literal for int()");
    await page.getByRole("button", { name: "Retry" }).waitFor();
    await screenshot(page, "task-page");

    await page.reload();
    await page.getByRole("heading", { level: 1, name: "demo.flaky" }).waitFor();
    expect(await page.title()).toBe("demo.flaky failed · TaskLens");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("task page from a feed entry: a dashboard opened after the task ran shows it, filtered and paused", async () => {
    const id = await enqueue("demo.quick", { n: 7 });
    await waitForStatus(id, "success");
    const { page, errors } = await signedIn("/monitoring");
    await page.getByTestId("connection-state").first().filter({ hasText: "live" }).waitFor();
    const feed = page.getByRole("region", { name: "Live activity" });
    // It ran before this page opened: the feed has it from the server's backfill.
    const entry = feed.locator(`[data-event-key="${id}:1:success"]`);
    await entry.waitFor({ timeout: 10_000 });
    await feed.locator(`[data-event-key="${id}:1:pending"]`).waitFor();

    await enqueue("demo.noop", {});
    await feed.locator(".feed__name", { hasText: "demo.noop" }).first().waitFor({ timeout: 30_000 });
    await feed.getByLabel("Show events of").selectOption("demo.quick");
    await expect.poll(() => feed.locator(".feed__name", { hasText: "demo.noop" }).count()).toBe(0);
    expect(new Set(await feed.locator(".feed__name").allTextContents())).toEqual(new Set(["demo.quick"]));

    await feed.getByRole("button", { name: "Pause" }).click();
    const later = await enqueue("demo.quick", { n: 8 });
    await waitForStatus(later, "success");
    // pending and success, and running unless the task ended before the worker's recorder
    // next published: then its running rides in the success event (one change, one event)
    await feed.getByText(/^Paused · [23] new events$/).waitFor({ timeout: 10_000 });
    expect(await feed.locator(`[data-event-key^="${later}:"]`).count()).toBe(0);
    await screenshot(page, "live-feed-paused");
    await feed.getByRole("button", { name: "Resume" }).click();
    await feed.locator(`[data-event-key="${later}:1:success"]`).waitFor();

    await entry.getByRole("link", { name: "demo.quick" }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/tasks/${id}`);
    await page.getByRole("heading", { level: 1, name: "demo.quick" }).waitFor();
    await page.getByTestId("task-status").filter({ hasText: "success" }).waitFor();
    expect(JSON.parse((await page.getByTestId("task-result").textContent())!)).toEqual({ n: 7, square: 49 });
    await screenshot(page, "task-page-from-feed");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("finds a task in the history by the first characters of its id", async () => {
    const id = await enqueue("demo.quick", { n: 4 });
    const others = await Promise.all([1, 2, 3].map((n) => enqueue("demo.quick", { n })));
    for (const task of [id, ...others]) await waitForStatus(task, "success");
    const { page, errors } = await signedIn("/monitoring");
    const prefix = id.slice(0, 8);
    await page.getByLabel("Search").fill(prefix);
    await expect.poll(() => new URL(page.url()).searchParams.get("q")).toBe(prefix);
    const rows = page.getByTestId("history-row");
    await expect.poll(() => rows.count()).toBe(1);
    expect(await page.getByTestId("history-total").textContent()).toBe("1 execution");
    await screenshot(page, "history-search-by-id");

    await rows
      .first()
      .getByRole("link", { name: `Task page of demo.quick ${id}` })
      .click();
    await page.getByTestId("task-status").filter({ hasText: "success" }).waitFor();
    expect(JSON.parse((await page.getByTestId("task-result").textContent())!)).toEqual({ n: 4, square: 16 });
    expect(errors).toEqual([]);
    await page.close();
  });
});
