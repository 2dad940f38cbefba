import { act, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { setToken } from "@/lib/token-store";
import { PHONE_QUERY } from "@/lib/use-media-query";
import { dashboardApi } from "@/testing/fixtures";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

/** A screen `width` px wide for `matchMedia` (jsdom has none): only max-width queries. */
function screenWidth(width: number) {
  const lists: { query: string; listeners: Set<() => void> }[] = [];
  let current = width;
  const matches = (query: string) => current <= Number(/max-width:\s*(\d+)px/.exec(query)?.[1] ?? Infinity);
  vi.stubGlobal("matchMedia", (query: string) => {
    const list = { query, listeners: new Set<() => void>() };
    lists.push(list);
    return {
      get matches() {
        return matches(query);
      },
      media: query,
      addEventListener: (_: string, listener: () => void) => list.listeners.add(listener),
      removeEventListener: (_: string, listener: () => void) => list.listeners.delete(listener),
    };
  });
  return {
    resize(next: number) {
      current = next;
      act(() => lists.forEach((l) => l.listeners.forEach((listener) => listener())));
    },
  };
}

const failedRow = {
  id: 7,
  task_id: "task-7",
  task_name: "reports.build",
  status: "failed",
  params: { user: "octo" },
  queue: "tasklens",
  attempt: 2,
  worker: "host:1",
  progress: null,
  progress_message: null,
  result: null,
  started_at: "2026-11-23T10:00:00Z",
  completed_at: "2026-11-23T10:00:01Z",
  duration_ms: 1234,
  error_message: "ValueError: a long message that a phone must wrap instead of scrolling sideways",
  error_traceback: "Traceback (most recent call last):\nValueError: boom",
  created_at: "2026-11-23T10:00:00Z",
  updated_at: "2026-11-23T10:00:01Z",
};

function history(items: unknown[]) {
  return dashboardApi({
    "/api/v1/monitoring/history": () =>
      jsonResponse({ total_count: items.length, page: 1, page_size: 25, total_pages: items.length ? 1 : 0, items }),
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("history on a phone", () => {
  it(`rows become stacked cards at ${PHONE_QUERY}, each value labelled, and expand in place`, async () => {
    screenWidth(390);
    setToken("t");
    stubFetch(history([failedRow]));
    renderApp("/monitoring");

    const cards = await screen.findByRole("list", { name: "Executions" });
    expect(screen.queryByRole("table", { name: "Executions" })).toBeNull();
    const card = within(cards).getByTestId("history-row");
    expect(within(card).getByText("Status").nextSibling).toHaveTextContent("failed");
    expect(within(card).getByText("Attempt").nextSibling).toHaveTextContent("2");
    expect(within(card).getByText("Duration").nextSibling).toHaveTextContent("1.23 s");
    expect(within(card).getByText("Error").nextSibling).toHaveTextContent("a phone must wrap");

    await userEvent.click(within(card).getByRole("button", { name: /reports\.build/ }));
    expect(within(card).getByTestId("traceback")).toHaveTextContent("ValueError: boom");
  });

  it("a wide screen keeps the table, and turning the phone sideways past 640 px switches", async () => {
    const screen_ = screenWidth(390);
    setToken("t");
    stubFetch(history([failedRow]));
    renderApp("/monitoring");
    await screen.findByRole("list", { name: "Executions" });

    screen_.resize(844);
    const table = await screen.findByRole("table", { name: "Executions" });
    expect(within(table).getByRole("columnheader", { name: "Error" })).toBeInTheDocument();
    expect(within(table).getByTestId("history-row")).toHaveTextContent("reports.build");
  });
});

describe("empty history", () => {
  it("with no filters, says how to fill the log (no markdown in the text)", async () => {
    setToken("t");
    stubFetch(history([]));
    renderApp("/monitoring");
    const empty = await screen.findByText(/No executions yet/);
    expect(empty).toHaveTextContent("Queue demo tasks with ./dev demo 50");
    expect(empty).toHaveTextContent("a worker must be running for them to finish: ./dev tasklens worker");
    expect(document.body.textContent).not.toContain("`");
  });

  it("with a filter, says nothing matches instead", async () => {
    setToken("t");
    stubFetch(history([]));
    renderApp("/monitoring?status=cancelled");
    expect(await screen.findByText("No executions match these filters.")).toBeInTheDocument();
    expect(screen.queryByText(/No executions yet/)).toBeNull();
  });
});
