/**
 * A failure group retried in bulk, in headless Chromium against the real distributed stack:
 * failing demo tasks show up as one group on /failures; "Retry all" counts them, the
 * confirmation names that count, and the retries are new tasks that run. Screenshots go to
 * frontend/test-results/.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { launchBrowser, newPage, screenshot } from "./browser";
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

type Task = { status: string; task_name: string; params: Record<string, unknown> };
type BulkRetry = { retried: { task_id: string; retry_of: string }[] };

async function finished(taskId: string): Promise<string> {
  let status = "";
  await expect
    .poll(
      async () => {
        status = ((await stack.api(`/api/v1/tasks/${taskId}`)) as Task).status;
        return status === "success" || status === "failed";
      },
      { timeout: 30_000 },
    )
    .toBe(true);
  return status;
}

describe("failures page", () => {
  it("shows a group of failures and retries it in bulk after a confirmation with the count", async () => {
    const body = { task: "demo.flaky", count: 3, params: { failure_rate: 1, record_id: 7 } };
    const { task_ids: failed } = (await stack.api("/api/v1/demo", { method: "POST", body })) as { task_ids: string[] };
    for (const id of failed) expect(await finished(id)).toBe("failed");

    const { page, errors } = await newPage(browser);
    onTestFailed(async ({ task }) => {
      if (!page.isClosed()) await screenshot(page, `FAILED ${task.name}`);
    });
    await page.goto(`${stack.info.url}/failures?token=${stack.info.operator}`);
    const group = page.getByTestId("failure-group").filter({ hasText: "could not import record <n>" });
    await group.waitFor();
    expect(await group.getByTestId("failure-count").textContent()).toBe("3 failures");
    expect(await group.textContent()).toContain("3 tasks");
    await group.getByRole("img", { name: "3 failures per hour, oldest first" }).waitFor();

    await group.getByRole("button", { name: "Retry all" }).click();
    const dialog = group.getByRole("alertdialog", { name: "Retry group" });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain("Retry 3 tasks, each as a new task?");
    await screenshot(page, "failures-confirm-bulk-retry");

    const answered = page.waitForResponse((r) => r.url().endsWith("/retry") && r.request().method() === "POST");
    await dialog.getByRole("button", { name: "Confirm retry of 3" }).click();
    const retried = ((await (await answered).json()) as BulkRetry).retried;
    await page.getByTestId("failures-notice").filter({ hasText: "Retried 3 tasks" }).waitFor();
    expect(retried.map((r) => r.retry_of).sort()).toEqual([...failed].sort());
    for (const { task_id } of retried) {
      expect(failed).not.toContain(task_id);
      const task = (await stack.api(`/api/v1/tasks/${task_id}`)) as Task;
      expect(task.task_name).toBe("demo.flaky");
      expect(task.params).toEqual({ failure_rate: 1, record_id: 7 });
      expect(await finished(task_id)).toBe("failed"); // it ran again (and fails again, on purpose)
    }
    // The originals left the group; the retries' own failures are its new members.
    await expect
      .poll(async () => {
        await page.reload();
        await group.waitFor();
        return group.getByTestId("failure-count").textContent();
      })
      .toBe("3 failures");
    await screenshot(page, "failures-after-bulk-retry");
    expect(errors).toEqual([]);
    await page.close();
  });
});
