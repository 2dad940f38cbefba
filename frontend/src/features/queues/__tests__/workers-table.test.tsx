import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { WorkersTable } from "../components/workers-table";

const worker = {
  id: "box:42",
  hostname: "box",
  pid: 42,
  started_at: "2026-11-23T09:00:00Z",
  last_seen: "2026-11-23T10:00:00Z",
  online: true,
  running: 2,
  uptime_seconds: 42,
  processed: 12,
  failed: 0,
  concurrency: 10,
  queues: ["tasklens"],
};

function cellsOf(row: HTMLElement): (string | null)[] {
  return within(row)
    .getAllByRole("cell")
    .map((c) => c.textContent);
}

describe("WorkersTable", () => {
  it("shows each worker's counts since it started, its uptime, concurrency and queues", () => {
    render(
      <WorkersTable workers={[worker, { ...worker, id: "b:7", hostname: "b", pid: 7, online: false, failed: 3 }]} />,
    );

    const [first, second] = screen.getAllByTestId("worker-row");
    expect(cellsOf(first).slice(0, 6)).toEqual(["box:42tasklens", "online", "2 / 10", "12", "0", "42.00 s"]);
    expect(within(first).getByTestId("worker-queues")).toHaveTextContent("tasklens");
    expect(cellsOf(second).slice(1, 5)).toEqual(["offline", "2 / 10", "12", "3"]);
    // A worker with failures draws attention to them; one without does not.
    expect(within(within(second).getAllByRole("cell")[4]).getByText("3")).toHaveClass("tone-bad");
    expect(within(first).getAllByRole("cell")[4].querySelector(".tone-bad")).toBeNull();
  });

  it("shows a dash, not a zero, for what a worker too old to say leaves out", () => {
    render(<WorkersTable workers={[{ ...worker, processed: null, failed: null, concurrency: null, queues: [] }]} />);
    const row = screen.getByTestId("worker-row");
    expect(cellsOf(row).slice(0, 5)).toEqual(["box:42", "online", "2", "—", "—"]);
    expect(within(row).queryByTestId("worker-queues")).toBeNull();
  });

  it("says how to start a worker when none reported in", () => {
    render(<WorkersTable workers={[]} />);
    expect(screen.getByText(/No worker has reported in/)).toBeInTheDocument();
    expect(screen.queryAllByTestId("worker-row")).toHaveLength(0);
  });
});
