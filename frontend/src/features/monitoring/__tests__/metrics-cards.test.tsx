import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { MetricsCards } from "../components/metrics-cards";
import { formatDuration, formatRate } from "@/lib/format";
import { metricsResponse } from "@/testing/fixtures";

/** The value shown next to a <dt> label inside a card. */
function valueOf(card: HTMLElement, label: string): string | null {
  const term = within(card).getByText(label, { selector: "dt" });
  return term.nextElementSibling?.textContent ?? null;
}

describe("MetricsCards", () => {
  it("renders one card per task with its counts, durations and success rate", () => {
    render(<MetricsCards metrics={metricsResponse.metrics} />);

    const cards = screen.getAllByRole("article");
    expect(cards).toHaveLength(2);

    const reports = screen.getByRole("article", { name: "reports.build" });
    expect(within(reports).getByRole("heading", { name: "reports.build" })).toBeInTheDocument();
    expect(within(reports).getByText("1,234 runs")).toBeInTheDocument();
    expect(valueOf(reports, "pending")).toBe("3");
    expect(valueOf(reports, "running")).toBe("2");
    expect(valueOf(reports, "success")).toBe("1,180");
    expect(valueOf(reports, "failed")).toBe("41");
    expect(valueOf(reports, "cancelled")).toBe("8");
    expect(valueOf(reports, "avg duration")).toBe("1.53 s");
    expect(valueOf(reports, "p95 duration")).toBe("4.87 s");
    expect(valueOf(reports, "success rate")).toBe("96.6%");

    const emails = screen.getByRole("article", { name: "emails.send" });
    expect(valueOf(emails, "pending")).toBe("7");
    expect(valueOf(emails, "success")).toBe("0");
    // Nothing finished yet: no durations and no rate, shown as a dash rather than 0 or NaN.
    expect(valueOf(emails, "avg duration")).toBe("—");
    expect(valueOf(emails, "p95 duration")).toBe("—");
    expect(valueOf(emails, "success rate")).toBe("—");
  });

  it("greys an idle task name (no run in the window) and shows its zeros", () => {
    const idle = {
      task_name: "nightly.cleanup",
      total_executions: 0,
      pending: 0,
      running: 0,
      success: 0,
      failed: 0,
      cancelled: 0,
      avg_duration_ms: null,
      p95_duration_ms: null,
      success_rate: null,
    };
    render(<MetricsCards metrics={[...metricsResponse.metrics, idle]} />);

    const card = screen.getByRole("article", { name: "nightly.cleanup" });
    expect(card).toHaveClass("metrics-card--idle");
    expect(within(card).getByText("idle")).toHaveAttribute("title", "No run in the selected window");
    for (const state of ["pending", "running", "success", "failed", "cancelled"]) {
      expect(valueOf(card, state)).toBe("0");
    }
    expect(valueOf(card, "success rate")).toBe("—");
    // A task name with runs, even only pending ones, is not idle.
    expect(screen.getByRole("article", { name: "emails.send" })).not.toHaveClass("metrics-card--idle");
    expect(screen.getByRole("article", { name: "reports.build" })).not.toHaveClass("metrics-card--idle");
  });

  it("renders nothing but an empty grid for no metrics", () => {
    render(<MetricsCards metrics={[]} />);
    expect(screen.queryAllByRole("article")).toHaveLength(0);
  });
});

describe("formatting", () => {
  it("formats durations by magnitude", () => {
    expect(formatDuration(0)).toBe("0 ms");
    expect(formatDuration(849.6)).toBe("850 ms");
    expect(formatDuration(1000)).toBe("1.00 s");
    expect(formatDuration(125_000)).toBe("2m 5s");
    expect(formatDuration(3_780_000)).toBe("1h 3m");
    expect(formatDuration(null)).toBe("—");
  });

  it("formats rates as percentages", () => {
    expect(formatRate(1)).toBe("100%");
    expect(formatRate(0)).toBe("0%");
    expect(formatRate(0.12345)).toBe("12.3%");
    expect(formatRate(null)).toBe("—");
  });
});
