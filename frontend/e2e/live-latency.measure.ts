/**
 * How long a lifecycle event takes to show in the live feed, measured in the browser at
 * 10 and 200 events/s (target: p99 < 100 ms). Two figures per rate:
 * - socket → feed: from the frame's arrival in the page to its row in the DOM (the SPA's part);
 * - worker → feed: from the event's timestamp (stamped in the worker) to the row (whole path:
 *   recorder flush, Redis pub/sub, API, socket, SPA). Same machine, same clock.
 * Load is real: demo.noop tasks enqueued through the API, three events each.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { beforeAll, it } from "vitest";
import { launchBrowser, newPage, RESULTS } from "./browser";
import { E2EStack } from "./stack";

let stack: E2EStack;

beforeAll(async () => {
  stack = await E2EStack.start();
  return () => stack.stop();
});

type Sample = { socketToFeed: number; workerToFeed: number };

/** Instruments the page before any script runs: frame arrival times, and rows as they appear. */
async function instrument(page: Page) {
  await page.addInitScript(() => {
    const arrivals = new Map<string, { at: number; stamp: number }>();
    const samples: { socketToFeed: number; workerToFeed: number }[] = [];
    (window as unknown as { latency: typeof samples }).latency = samples;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener("message", (message: MessageEvent) => {
          const at = performance.now();
          const frame = JSON.parse(String(message.data)) as {
            type?: string;
            status?: string;
            timestamp?: string;
            data?: { task_id: string; attempt: number };
          };
          if (frame.type === "task_event" && frame.data && frame.timestamp) {
            const key = `${frame.data.task_id}:${frame.data.attempt}:${frame.status}`;
            arrivals.set(key, { at, stamp: Date.parse(frame.timestamp) });
          }
        });
      }
    };
    new MutationObserver((records) => {
      const now = performance.now();
      const wall = Date.now();
      for (const record of records) {
        for (const node of record.addedNodes) {
          const key = node instanceof HTMLElement ? node.dataset.eventKey : undefined;
          const arrival = key ? arrivals.get(key) : undefined;
          if (key && arrival) {
            arrivals.delete(key);
            samples.push({ socketToFeed: now - arrival.at, workerToFeed: wall - arrival.stamp });
          }
        }
      }
    }).observe(document, { subtree: true, childList: true });
  });
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

async function drive(eventsPerSecond: number, seconds: number): Promise<void> {
  // Each demo.noop task makes three events (pending, running, success).
  const tasksPerSecond = eventsPerSecond / 3;
  const tickMs = 100;
  const perTick = tasksPerSecond * (tickMs / 1000);
  let owed = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const started = Date.now();
    owed += perTick;
    const count = Math.floor(owed);
    owed -= count;
    if (count > 0) await stack.api("/api/v1/demo", { method: "POST", body: { task: "demo.noop", count } });
    await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - started))));
  }
  await new Promise((r) => setTimeout(r, 2_000)); // let the last events arrive
}

it("live feed latency at 10 and 200 events/s", async () => {
  const browser = await launchBrowser();
  const report: Record<string, unknown> = {};
  try {
    for (const rate of [10, 200]) {
      const { page } = await newPage(browser);
      await instrument(page);
      await page.goto(`${stack.info.url}/monitoring?token=${stack.info.operator}`);
      await page.getByTestId("connection-state").first().filter({ hasText: "live" }).waitFor();
      await drive(rate, 15);
      const samples = await page.evaluate(() => (window as unknown as { latency: Sample[] }).latency);
      const socket = samples.map((s) => s.socketToFeed);
      const worker = samples.map((s) => s.workerToFeed);
      const figures = {
        events_shown: samples.length,
        socket_to_feed_ms: { p50: quantile(socket, 0.5), p99: quantile(socket, 0.99) },
        worker_to_feed_ms: { p50: quantile(worker, 0.5), p99: quantile(worker, 0.99) },
      };
      report[`${rate}_events_per_second`] = figures;
      console.log(
        `${rate} events/s: ${samples.length} events shown; socket→feed p50 ${figures.socket_to_feed_ms.p50.toFixed(1)} ms, ` +
          `p99 ${figures.socket_to_feed_ms.p99.toFixed(1)} ms; worker→feed p50 ${figures.worker_to_feed_ms.p50.toFixed(1)} ms, ` +
          `p99 ${figures.worker_to_feed_ms.p99.toFixed(1)} ms (target p99 < 100 ms: ratio ${(figures.worker_to_feed_ms.p99 / 100).toFixed(2)})`,
      );
      await page.close();
    }
  } finally {
    await browser.close();
  }
  writeFileSync(resolve(RESULTS, "live-latency.json"), JSON.stringify(report, null, 2));
});
