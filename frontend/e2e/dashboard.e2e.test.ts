/**
 * The quickstart scenarios (specs/quickstart.md), walked in headless Chromium against the
 * real distributed stack: what a user clicks, what they see. Screenshots of every page go
 * to frontend/test-results/.
 */
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { launchBrowser, newPage, saveTrace, screenshot } from "./browser";
import { E2EStack } from "./stack";

let stack: E2EStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([E2EStack.start(), launchBrowser()]);
  return async () => {
    await browser.close();
    await stack.stop();
  };
});

async function signedIn(token = stack.info.operator, path = "/monitoring", options = {}) {
  const { page, errors } = await newPage(browser, { ...options, trace: true });
  // On failure: a screenshot of where the page was, and what it said, for the CI artifacts.
  const log: string[] = [];
  const started = Date.now();
  page.on("console", (m) => log.push(`${Date.now() - started} ms console.${m.type()}: ${m.text()}`));
  page.on("websocket", (ws) => {
    log.push(`${Date.now() - started} ms websocket opened`);
    ws.on("close", () => log.push(`${Date.now() - started} ms websocket closed`));
  });
  onTestFailed(async ({ task }) => {
    if (page.isClosed()) return;
    await screenshot(page, `FAILED ${task.name}`);
    await saveTrace(page, `FAILED ${task.name}`);
    console.log(`page log of "${task.name}" (${page.url()}):\n${log.join("\n")}`);
  });
  await page.goto(`${stack.info.url}${path}${path.includes("?") ? "&" : "?"}token=${token}`);
  return { page, errors };
}

async function waitLive(page: Page) {
  await page.getByTestId("connection-state").first().filter({ hasText: "live" }).waitFor();
}

type TaskDetail = { status: string };

async function waitForTasks(ids: string[], status: string) {
  for (const id of ids) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const task = (await stack.api(`/api/v1/tasks/${id}`).catch(() => null)) as TaskDetail | null;
      if (task?.status === status) break;
      if (Date.now() > deadline) throw new Error(`task ${id} did not become ${status}: ${JSON.stringify(task)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function enqueue(task: string, count: number, params: Record<string, unknown> = {}): Promise<string[]> {
  const body = (await stack.api("/api/v1/demo", { method: "POST", body: { task, count, params } })) as {
    task_ids: string[];
  };
  return body.task_ids;
}

describe("monitoring dashboard", () => {
  it("signs in from the printed link, drops the token from the address bar, goes live", async () => {
    const signIn = await newPage(browser);
    await signIn.page.goto(`${stack.info.url}/monitoring`);
    await signIn.page.getByRole("heading", { name: "Sign in to TaskLens" }).waitFor();
    await screenshot(signIn.page, "sign-in");
    await signIn.page.close();

    const { page, errors } = await signedIn();
    await page.getByRole("heading", { level: 1, name: "Background Task Monitoring" }).waitFor();
    expect(page.url()).not.toContain("token=");
    await waitLive(page);
    expect(await page.title()).toBe("Background Task Monitoring · TaskLens");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a task run from the UI shows in the live feed, and the metrics update", async () => {
    const { page, errors } = await signedIn(stack.info.operator, "/queues");
    await waitLive(page);
    await page.getByLabel("Task", { exact: true }).selectOption("demo.quick");
    await page.getByLabel("Count").fill("3");
    await page.getByRole("button", { name: "Enqueue" }).click();
    await page.getByText("Enqueued 3 tasks.").waitFor();

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Monitoring" }).click();
    const feed = page.getByRole("list", { name: "Recent task events" });
    await feed.locator(".feed__item.status--success", { hasText: "demo.quick" }).nth(2).waitFor();

    const card = page.getByRole("article", { name: "demo.quick" });
    await card.locator(".stat--success dd", { hasText: /^3$/ }).waitFor();
    await waitForTasks(await enqueue("demo.quick", 2), "success");
    // No reload: live events refetch the numbers.
    await card.locator(".stat--success dd", { hasText: /^5$/ }).waitFor({ timeout: 15_000 });
    await page.locator(".chart canvas").first().waitFor();
    await screenshot(page, "monitoring");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a failed task's traceback is found through the history filters", async () => {
    await waitForTasks(await enqueue("demo.flaky", 1, { failure_rate: 1, record_id: 7 }), "failed");
    const { page } = await signedIn();
    await page.getByLabel("Task name").selectOption("demo.flaky");
    await page.getByLabel("Status").selectOption("failed");
    await expect.poll(() => page.url()).toContain("task_name=demo.flaky");
    expect(page.url()).toContain("status=failed");

    const rows = page.getByTestId("history-row");
    await rows.first().filter({ hasText: "DemoFailure: could not import record 7" }).waitFor();
    await rows
      .first()
      .getByRole("button", { name: /demo\.flaky/ })
      .click();
    const traceback = page.getByTestId("traceback").first();
    await expect.poll(() => traceback.textContent()).toContain("ValueError: invalid literal for int()");
    expect(await traceback.textContent()).toContain("DemoFailure: could not import record 7");
    await screenshot(page, "history-traceback");

    await page.goBack({ waitUntil: "commit" });
    await expect.poll(() => page.url()).not.toContain("status=");
    expect(await page.getByLabel("Status").inputValue()).toBe("");
    await page.close();
  });

  it("pages through the history, page size and page in the URL", async () => {
    await waitForTasks(await enqueue("demo.noop", 30), "success");
    const { page } = await signedIn(stack.info.operator, "/monitoring?task_name=demo.noop&page_size=25");
    await page.getByText("Page 1 of 2").waitFor();
    await expect.poll(() => page.getByTestId("history-row").count()).toBe(25);
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByText("Page 2 of 2").waitFor();
    await expect.poll(() => page.getByTestId("history-row").count()).toBe(5);
    expect(new URL(page.url()).searchParams.get("page")).toBe("2");
    await page.goBack({ waitUntil: "commit" });
    await page.getByText("Page 1 of 2").waitFor();
    await page.close();
  });

  it("reconnects its WebSocket when the API process restarts, and the feed carries on", async () => {
    const { page } = await signedIn();
    await waitLive(page);
    const state = page.getByTestId("connection-state").first();
    const sawDisconnect = state.filter({ hasText: /reconnecting|offline/ }).waitFor({ timeout: 30_000 });
    await stack.restartApi();
    await sawDisconnect;
    // Backoff reaches 10 s between attempts while the API is away.
    await page.getByTestId("connection-state").first().filter({ hasText: "live" }).waitFor({ timeout: 60_000 });
    const [id] = await enqueue("demo.slow", 1, { steps: 2, step_seconds: 0.2 });
    await page.locator(`[data-event-key="${id}:1:success"]`).waitFor({ timeout: 30_000 });
    await page.close();
  });
});

describe("analyses", () => {
  /** Every value the progress bar takes, recorded in the page as it changes. */
  async function recordProgress(page: Page) {
    await page.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { progressSeen: number[] }).progressSeen = seen;
      const observer = new MutationObserver(() => {
        const bar = document.querySelector<HTMLProgressElement>('progress[aria-label="Analysis progress"]');
        if (bar && seen.at(-1) !== bar.value) seen.push(bar.value);
      });
      observer.observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    return () => page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
  }

  it("a GitHub analysis started from the form shows its progress, then the report", async () => {
    const { page, errors } = await signedIn(stack.info.operator, "/analyses");
    const progress = await recordProgress(page);
    await page.getByLabel("Kind").selectOption("github_user");
    await page.getByLabel("Username").fill("octo-dev");
    await page.getByLabel("Period").selectOption("all");
    await page.getByRole("button", { name: "Analyse" }).click();
    await expect.poll(() => page.url()).toContain("/analyses/github_user/octo-dev");

    const report = page.getByTestId("github-report");
    await report.waitFor({ timeout: 60_000 });
    const values = await progress();
    expect(values.some((v) => v > 0 && v < 100)).toBe(true);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(await report.textContent()).toContain("taskiq-python/taskiq");
    await report.locator("canvas").waitFor();
    await screenshot(page, "analysis-github");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a repository report renders; refreshing past the limit shows when it is possible again", async () => {
    const { page } = await signedIn(stack.info.operator, "/analyses");
    await page.getByLabel("Repository", { exact: true }).fill("relative/path");
    await page.getByRole("button", { name: "Analyse" }).click();
    await page.getByText("A local path must be absolute.").waitFor();

    await page.getByLabel("Repository", { exact: true }).fill(stack.info.repository);
    await page.getByRole("button", { name: "Analyse" }).click();
    const report = page.getByTestId("repository-report");
    await report.waitFor({ timeout: 60_000 });
    await report.getByRole("progressbar", { name: "TASKS.md plan progress" }).waitFor();
    await report.locator("canvas").first().waitFor();
    await screenshot(page, "analysis-repository");

    // The e2e stack allows 2 forced refreshes per 5 minutes; the third is refused.
    const refresh = page.getByRole("button", { name: "Refresh now" });
    for (let i = 0; i < 2; i++) {
      await refresh.click();
      await page
        .getByTestId("task-progress")
        .waitFor({ state: "detached", timeout: 60_000 })
        .catch(() => {});
      await refresh.waitFor({ timeout: 60_000 });
      await expect.poll(() => refresh.isEnabled(), { timeout: 60_000 }).toBe(true);
    }
    await refresh.click();
    const countdown = page.getByTestId("refresh-countdown");
    await countdown.waitFor();
    expect(await countdown.textContent()).toMatch(/you can refresh again in \d+:\d\d/);
    expect(await refresh.isDisabled()).toBe(true);

    await page.getByRole("link", { name: "Analyses" }).first().click();
    await page.getByRole("link", { name: stack.info.repository }).waitFor();
    await screenshot(page, "analyses");
    await page.close();
  });
});

describe("an analysis attempt that will be retried", () => {
  it("counts down to the next attempt instead of saying it failed, then shows the report", async () => {
    // The recording answers wait-dev's profile with a 429 (Retry-After: 2) once, then 200.
    const { page, errors } = await signedIn(stack.info.operator, "/analyses/github_user/wait-dev");
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { retryNotes: string[] }).retryNotes = seen;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="task-progress"] [role="status"]')?.textContent ?? "";
        if (text.includes("retrying") && seen.at(-1) !== text) seen.push(text.trim());
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const countdown = page.getByTestId("task-progress").filter({ hasText: /retrying in \d+ s/ });
    await countdown.waitFor({ timeout: 60_000 });
    await screenshot(page, "analysis-retry-countdown");
    await page.getByTestId("github-report").waitFor({ timeout: 60_000 });

    const notes = await page.evaluate(() => (window as unknown as { retryNotes: string[] }).retryNotes);
    const seconds = notes.flatMap((n) => /retrying in (\d+) s \(2 of 2\)$/.exec(n)?.[1] ?? []).map(Number);
    expect(notes.every((n) => n.startsWith("Attempt 1 failed"))).toBe(true);
    expect(notes).toContainEqual(
      expect.stringMatching(
        /^Attempt 1 failed \(RateLimited: GitHub rate limit reached.*\), retrying in \d s \(2 of 2\)$/,
      ),
    );
    expect(seconds.length).toBeGreaterThanOrEqual(2); // it ticked
    expect(seconds).toEqual([...seconds].sort((a, b) => b - a)); // down, never up
    expect(seconds[0]).toBeLessThanOrEqual(5); // Retry-After 2 s, a second more, and rounding up
    expect(await page.getByTestId("task-failed").count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});

describe("a failed analysis", () => {
  type History = { items: { task_id: string; params: { subject?: string } | null }[] };

  async function runsOf(subject: string): Promise<string[]> {
    const history = (await stack.api(
      "/api/v1/monitoring/history?task_name=analysis.github_user&page_size=200",
    )) as History;
    return [...new Set(history.items.filter((i) => i.params?.subject === subject).map((i) => i.task_id))];
  }

  it("a failed analysis page left open 60 s starts nothing new; Retry starts one run", async () => {
    const subject = "ghost-nobody"; // not in the GitHub recording: every run fails
    const { page, errors } = await signedIn(stack.info.operator, `/analyses/github_user/${subject}`);
    const posts: string[] = [];
    page.on("request", (r) => {
      if (r.method() === "POST") posts.push(new URL(r.url()).pathname);
    });
    const failed = page.getByTestId("task-failed");
    await failed.waitFor({ timeout: 60_000 }); // opening it (as an operator) ran it once
    expect(await failed.textContent()).toContain("does not exist");
    const [first] = await runsOf(subject);
    expect(await runsOf(subject)).toEqual([first]);

    await page.waitForTimeout(60_000); // left open
    expect(await runsOf(subject)).toEqual([first]);
    expect(posts).toEqual([]);
    expect(await failed.isVisible()).toBe(true);
    await screenshot(page, "analysis-failed");

    await page.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => runsOf(subject), { timeout: 30_000 }).toHaveLength(2);
    await failed.waitFor({ timeout: 60_000 });
    await page.waitForTimeout(3_000);
    expect(await runsOf(subject)).toHaveLength(2);
    expect(posts).toEqual([`/api/v1/tasks/${first}/retry`]);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);
});

describe("roles, themes and small screens", () => {
  it("a viewer sees queues and reports without operator actions", async () => {
    const { page } = await signedIn(stack.info.viewer, "/queues");
    await page.getByRole("heading", { name: "Workers", exact: true }).waitFor();
    await page.getByTestId("worker-row").first().filter({ hasText: "online" }).waitFor();
    await page.getByTestId("failed-task").first().waitFor();
    expect(await page.getByRole("button", { name: "Retry" }).count()).toBe(0);
    expect(await page.getByRole("heading", { name: "Run demo tasks" }).count()).toBe(0);
    await screenshot(page, "queues-viewer");
    await page.goto(`${stack.info.url}/analyses`);
    await page.getByText("Viewers can read reports").waitFor();
    await page.close();
  });

  it("an operator retries a failed task from the queues page", async () => {
    const [id] = await enqueue("demo.flaky", 1, { failure_rate: 1, record_id: 99 });
    await waitForTasks([id], "failed");
    const { page } = await signedIn(stack.info.operator, "/queues");
    const failed = page
      .getByTestId("failed-task")
      .filter({ hasText: id.slice(0, 8) })
      .first();
    await failed.getByRole("button", { name: "Retry" }).click();
    await failed.getByRole("button", { name: "Confirm retry" }).click();
    await failed.getByText(/Retried as /).waitFor();
    await screenshot(page, "queues");
    await page.close();
  });

  it("follows a dark system theme and fits a phone-width screen, history rows as cards", async () => {
    await waitForTasks(await enqueue("demo.flaky", 2, { failure_rate: 1.0 }), "failed"); // rows to show
    const { page } = await signedIn(stack.info.operator, "/monitoring", {
      colorScheme: "dark",
      width: 390,
      height: 844,
    });
    await page.getByRole("article").first().waitFor();
    // History: stacked cards, not a table to scroll sideways; each card within the screen.
    const cards = page.getByRole("list", { name: "Executions" });
    await cards.getByTestId("history-row").first().waitFor();
    expect(await page.getByRole("table", { name: "Executions" }).count()).toBe(0);
    const edges = await cards
      .getByTestId("history-row")
      .evaluateAll((items) => items.map((item) => item.getBoundingClientRect().right));
    expect(Math.max(...edges)).toBeLessThanOrEqual(390);
    await cards.getByTestId("history-row").first().getByRole("button").first().click();
    await cards.getByRole("heading", { name: "Params" }).first().waitFor();
    await screenshot(page, "history-phone-cards");
    const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    const [r, g, b] = background.match(/\d+/g)!.map(Number);
    expect(r + g + b).toBeLessThan(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(page, "monitoring-dark-phone");
    await page.close();
  });

  it("a task page waiting for a row not written yet polls without console errors", async () => {
    const { page } = await signedIn(stack.info.operator, "/tasks/not-logged-yet-0000");
    const consoleErrors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    await page.getByTestId("task-not-logged").waitFor();
    await page.waitForTimeout(4_500); // two polls at least
    expect(consoleErrors).toEqual([]);
    await page.close();
  });
});
