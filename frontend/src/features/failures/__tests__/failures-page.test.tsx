import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

const FP = "0123456789abcdef";

function group(fingerprint: string, message: string, count: number) {
  return {
    fingerprint,
    exception_type: "KeyError",
    message,
    frame: "billing/charges.py:charge",
    count,
    tasks: 3,
    task_names: ["billing.charge"],
    first_seen: "2026-11-23T08:00:00Z",
    last_seen: "2026-11-23T10:00:00Z",
    trend: [0, 1, 3],
    sample_task_id: "a1",
    sample_error_message: "KeyError: order 1001",
    sample_traceback: "Traceback (most recent call last):\nKeyError: order 1001",
  };
}

const failures = {
  time_window_hours: 24,
  generated_at: "2026-11-23T10:00:00Z",
  bucket_seconds: 3600,
  trend_start: "2026-11-23T08:00:00Z",
  group_count: 2,
  scanned: 5,
  truncated: false,
  groups: [group(FP, "order <n>", 4), group("fedcba9876543210", "disk <path> full", 1)],
};

function retryResponse(dryRun: boolean) {
  return {
    dry_run: dryRun,
    matched: 3,
    cap: 2,
    to_retry: 2,
    remaining: 1,
    retried: dryRun
      ? []
      : [
          { task_id: "n1", retry_of: "a1" },
          { task_id: "n2", retry_of: "a2" },
        ],
    skipped: [],
  };
}

function api(role: "operator" | "viewer", posted: Request[] = []) {
  return (url: URL, request: Request) => {
    if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role });
    if (url.pathname === "/api/v1/failures") return jsonResponse(failures);
    if (url.pathname === `/api/v1/failures/${FP}/retry` && request.method === "POST") {
      posted.push(request.clone());
      return jsonResponse(retryResponse(posted.length === 1), 202); // a dry run first
    }
    return undefined;
  };
}

const bodies = (requests: Request[]) => Promise.all(requests.map((r) => r.clone().json()));

describe("failures page", () => {
  it("lists groups newest first with counts, trend and a sample traceback", async () => {
    setToken("t");
    stubFetch(api("viewer"));
    renderApp("/failures");
    const user = userEvent.setup();

    const groups = await screen.findAllByTestId("failure-group");
    expect(groups.map((g) => within(g).getByRole("heading").textContent)).toEqual([
      "KeyError: order <n>",
      "KeyError: disk <path> full",
    ]);
    expect(groups[0]).toHaveTextContent("4 failures · 3 tasks · billing.charge · billing/charges.py:charge");
    expect(within(groups[0]).getByRole("img", { name: "4 failures per hour, oldest first" })).toBeInTheDocument();
    expect(screen.getByText("2 groups from 5 failed attempts")).toBeInTheDocument();
    await user.click(within(groups[0]).getByRole("button", { name: "Sample traceback" }));
    expect(within(groups[0]).getByLabelText("Sample traceback")).toHaveTextContent("KeyError: order 1001");
    expect(within(groups[0]).queryByRole("button", { name: "Retry all" })).toBeNull(); // a viewer
  });

  it("an operator retries a group after a confirmation that names the count", async () => {
    setToken("t");
    const posted: Request[] = [];
    stubFetch(api("operator", posted));
    renderApp("/failures");
    const user = userEvent.setup();

    const [first] = await screen.findAllByTestId("failure-group");
    await user.click(await within(first).findByRole("button", { name: "Retry all" }));
    const dialog = await within(first).findByRole("alertdialog", { name: "Retry group" });
    expect(dialog).toHaveTextContent("Retry 2 tasks, each as a new task? 1 more task wait");
    expect(await bodies(posted)).toEqual([{ time_window: 24, dry_run: true }]); // only counted so far
    await user.click(within(dialog).getByRole("button", { name: "Confirm retry of 2" }));
    expect(await within(first).findByText("Retried 2 tasks")).toBeInTheDocument();
    expect(await bodies(posted)).toEqual([
      { time_window: 24, dry_run: true },
      { time_window: 24, dry_run: false },
    ]);
  });

  it("a group links to the history filtered to its fingerprint", async () => {
    setToken("t");
    stubFetch(api("viewer"));
    renderApp("/failures");

    const [first] = await screen.findAllByTestId("failure-group");
    const link = within(first).getByRole("link", { name: "KeyError: order <n>" });
    expect(link).toHaveAttribute("href", `/monitoring?status=failed&fingerprint=${FP}`);
  });
});
