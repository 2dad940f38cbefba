import { act, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { setToken } from "@/lib/token-store";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { jsonResponse, renderApp, stubFetch, taskEvent } from "@/testing/utils";
import type { Timeseries } from "../api/get-timeseries";
import { dashboardApi, emptyTimeseries } from "@/testing/fixtures";

type Bucket = Timeseries["series"][number];
type Drawn = { label: string; values: (number | null)[]; pointRadius: number };

function bucket(hour: number, counts: Partial<Bucket> = {}): Bucket {
  return {
    bucket_start: `2026-11-23T${String(hour).padStart(2, "0")}:00:00Z`,
    total: 0,
    pending: 0,
    running: 0,
    success: 0,
    failed: 0,
    cancelled: 0,
    p95_duration_ms: null,
    ...counts,
  };
}

/** A fresh install: one hour holds everything, 20 tasks still queued and 7 done. */
const oneBusyHour: Timeseries = {
  ...emptyTimeseries,
  generated_at: "2026-11-23T12:34:56Z",
  series: [
    bucket(10),
    bucket(11, { total: 27, pending: 18, running: 2, success: 6, failed: 1, p95_duration_ms: 2040 }),
    bucket(12),
  ],
};

async function drawn(title: string): Promise<Drawn[]> {
  const figure = await screen.findByRole("figure", { name: title });
  const stand = await waitFor(() => {
    const found = figure.querySelector<HTMLElement>("[data-datasets]");
    expect(found).not.toBeNull();
    return found!;
  });
  return JSON.parse(stand.dataset.datasets!) as Drawn[];
}

describe("throughput charts", () => {
  it("count only finished executions as finished, queued and running apart", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi({ "/api/v1/monitoring/timeseries": () => jsonResponse(oneBusyHour) }));
    renderApp("/monitoring");

    const [finished, failed, waiting] = await drawn("Throughput and failures");
    expect(finished).toMatchObject({ label: "finished", values: [0, 7, 0] });
    expect(failed).toMatchObject({ label: "failed", values: [0, 1, 0] });
    expect(waiting).toMatchObject({ label: "queued or running", values: [0, 20, 0] });
  });

  it("draw a lone p95 as a visible point", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi({ "/api/v1/monitoring/timeseries": () => jsonResponse(oneBusyHour) }));
    renderApp("/monitoring");

    const [p95] = await drawn("Duration p95");
    expect(p95.values).toEqual([null, 2040, null]);
    expect(p95.pointRadius).toBeGreaterThan(0);
    // With a line to sit on, the points stay hidden (720 of them would be noise).
    const [finished] = await drawn("Throughput and failures");
    expect(finished.pointRadius).toBe(0);
  });

  it("say when they were drawn and redraw when tasks change", async () => {
    setToken("secret-1");
    let served = oneBusyHour;
    const { requests } = stubFetch(dashboardApi({ "/api/v1/monitoring/timeseries": () => jsonResponse(served) }));
    renderApp("/monitoring");
    const stamp = await screen.findByTestId("charts-drawn-at");
    expect(stamp).toHaveTextContent(/^Charts drawn at \d\d:\d\d:\d\d/);
    const asked = () => requests.filter((r) => new URL(r.url).pathname === "/api/v1/monitoring/timeseries").length;
    const before = asked();

    served = {
      ...oneBusyHour,
      series: [bucket(10), bucket(11, { total: 27, pending: 17, running: 2, success: 7, failed: 1 }), bucket(12)],
    };
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const socket = FakeWebSocket.latest();
      act(() => {
        socket.open();
        socket.serverSend(taskEvent("reports.build", "success", { task_id: "x" }, "1"));
      });
      // Live events redraw the charts at most every 10 s (at the end of the window).
      act(() => {
        vi.advanceTimersByTime(10_000);
      });
      await waitFor(async () => expect((await drawn("Throughput and failures"))[0].values).toEqual([0, 8, 0]));
      expect(asked()).toBeGreaterThan(before);
    } finally {
      vi.useRealTimers();
    }
  });

  it("tell a new user how to get something to chart", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi());
    renderApp("/monitoring");
    const empty = await screen.findByText(/No executions to chart in this window/);
    expect(empty).toHaveTextContent("Queue some with ./dev demo 50 and start a worker.");
    expect(empty.textContent).not.toContain("`");
  });
});
