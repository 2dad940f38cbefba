/**
 * How fast the dashboard is usable with a large log: N rows (default 2,000,000, over 30 daily
 * partitions, TASKLENS_E2E_ROWS to change) loaded into the stack's PostgreSQL with the backend
 * benchmark's generator, then /monitoring opened cold five times. "Interactive" = the health
 * cards and the first history page are on screen (target < 1 s).
 *
 * TASKLENS_E2E_DATABASE=<name> runs the stack on that database and keeps it: rows it already
 * holds are measured as they are (generating tens of millions takes most of an hour), an empty
 * one is filled with TASKLENS_E2E_ROWS rows first.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, it } from "vitest";
import { launchBrowser, newPage } from "./browser";
import { BACKEND, E2EStack } from "./stack";

let stack: E2EStack;

beforeAll(async () => {
  stack = await E2EStack.start();
  return () => stack.stop();
});

function python(code: string, ...args: string[]): string {
  return execFileSync(join(BACKEND, ".venv/bin/python"), ["-c", code, ...args], {
    cwd: BACKEND,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
}

/** The rows the log holds (from its hourly counts) and how old its newest row is, in hours. */
function logHolds(databaseUrl: string): { rows: number; newestHoursAgo: number } {
  const out = python(
    `
import asyncio, sys
from tasklens.tracking.database import connect_postgres
async def main(url):
    conn = await connect_postgres(url)
    try:
        rows = await conn.fetchval("SELECT coalesce(sum(count), 0) FROM task_log_counts")
        age = await conn.fetchval("SELECT extract(epoch FROM now() - max(created_at)) FROM task_execution_logs")
    finally:
        await conn.close()
    print(rows, float(age or 0) / 3600)
asyncio.run(main(sys.argv[1]))
`,
    databaseUrl,
  );
  const [rows, hours] = out.trim().split(" ").map(Number);
  return { rows, newestHoursAgo: hours };
}

function generate(databaseUrl: string, rows: number): void {
  const started = Date.now();
  execFileSync(
    join(BACKEND, ".venv/bin/python"),
    [
      "-c",
      "import asyncio, sys; from benchmarks.queries import generate; asyncio.run(generate(sys.argv[1], int(sys.argv[2])))",
      databaseUrl,
      String(rows),
    ],
    { cwd: BACKEND, stdio: "inherit" },
  );
  console.log(`loaded ${rows.toLocaleString("en-US")} rows in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** What one cold load spent its time on: when each request the page made started and ended. */
type Timeline = { name: string; start: number; end: number }[];

it(
  "dashboard interactive with a large log",
  async () => {
    const kept = process.env.TASKLENS_E2E_DATABASE;
    let rows = Number(process.env.TASKLENS_E2E_ROWS ?? 2_000_000);
    const held = kept === undefined ? { rows: 0, newestHoursAgo: 0 } : logHolds(stack.info.database_url);
    if (held.rows > 0) {
      rows = held.rows;
      console.log(
        `reusing database ${String(kept)}: ${rows.toLocaleString("en-US")} rows, ` +
          `the newest ${held.newestHoursAgo.toFixed(1)} h old`,
      );
    } else {
      generate(stack.info.database_url, rows);
    }

    const browser = await launchBrowser();
    const times: number[] = [];
    const inPage: number[] = [];
    const timelines: Timeline[] = [];
    try {
      for (let run = 0; run < 5; run++) {
        const { page } = await newPage(browser);
        await page.goto(`${stack.info.url}/sign-in`);
        await page.evaluate((token) => localStorage.setItem("tasklens.token", token), stack.info.operator);
        // The same moment seen from inside the page, without Playwright's polling interval
        // and round trip: printed beside the figure, which stays the one above.
        await page.addInitScript(() => {
          new MutationObserver((_, observer) => {
            if (document.querySelector("article") && document.querySelector('[data-testid="history-row"]')) {
              sessionStorage.setItem("tasklens.onScreenAt", String(performance.now()));
              observer.disconnect();
            }
          }).observe(document, { childList: true, subtree: true });
        });
        await page.goto(`${stack.info.url}/monitoring`);
        await page.getByRole("article").first().waitFor();
        await page.getByTestId("history-row").first().waitFor();
        times.push(await page.evaluate(() => performance.now()));
        inPage.push(Number(await page.evaluate(() => sessionStorage.getItem("tasklens.onScreenAt"))));
        timelines.push(
          await page.evaluate(() => {
            const entries: PerformanceEntry[] = [
              ...performance.getEntriesByType("navigation"),
              ...performance.getEntriesByType("resource"),
            ];
            return entries.map((e) => ({
              name: new URL(e.name).pathname + new URL(e.name).search,
              start: e.startTime,
              end: (e as PerformanceResourceTiming).responseEnd,
            }));
          }),
        );
        await page.close();
      }
    } finally {
      await browser.close();
    }
    const sorted = [...times].sort((a, b) => a - b);
    const worst = times.indexOf(sorted[4]);
    console.log(
      `requests of the slowest load (ms from navigation start):\n` +
        timelines[worst]
          .filter((e) => e.start <= sorted[4])
          .map((e) => `  ${e.start.toFixed(0).padStart(5)} → ${e.end.toFixed(0).padStart(5)}  ${e.name}`)
          .join("\n"),
    );
    console.log(
      `dashboard interactive over ${rows.toLocaleString("en-US")} rows: ` +
        `median ${sorted[2].toFixed(0)} ms, worst ${sorted[4].toFixed(0)} ms ` +
        `(target < 1000 ms: ratio ${(sorted[4] / 1000).toFixed(2)}); runs ${times.map((t) => t.toFixed(0)).join(", ")}`,
    );
    const seen = [...inPage].sort((a, b) => a - b);
    console.log(
      `  the same moment seen in the page (a MutationObserver): median ${seen[2].toFixed(0)} ms, ` +
        `worst ${seen[4].toFixed(0)} ms; runs ${inPage.map((t) => t.toFixed(0)).join(", ")}`,
    );
  },
  6 * 3600_000,
);
