import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

function entry(id: number, action: string, target: string, outcome: string, detail: Record<string, string> | null) {
  return { id, at: "2026-11-23T10:00:00Z", actor: "ops", action, target, count: 1, outcome, detail };
}

const newest = [
  entry(3, "cancel", "t-9", "refused: task 't-9' is already success", null),
  entry(2, "retry", "t-1", "ok", { new_task_id: "t-2" }),
];
const older = [entry(1, "pause", "low", "ok", null)];

function api() {
  return (url: URL) => {
    if (url.pathname === "/api/v1/me") return jsonResponse({ name: "watcher", role: "viewer" });
    if (url.pathname === "/api/v1/audit") {
      const action = url.searchParams.get("action");
      if (action === "pause") return jsonResponse({ items: older, next_before_id: null });
      if (url.searchParams.get("before_id") === "2") return jsonResponse({ items: older, next_before_id: null });
      return jsonResponse({ items: newest, next_before_id: 2 });
    }
    return undefined;
  };
}

describe("AuditPage", () => {
  it("lists actions newest first with who, outcome and links to the tasks they touched", async () => {
    setToken("t");
    stubFetch(api());
    renderApp("/audit");
    const table = await screen.findByRole("table", { name: "Audit log" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((row) => within(row).getAllByRole("cell")[2]?.textContent)).toEqual(["cancel", "retry"]);
    expect(within(rows[0]).getByText("refused: task 't-9' is already success")).toHaveClass("status--cancelled");
    expect(within(rows[1]).getByText("ok")).toHaveClass("status--success");
    expect(within(rows[1]).getByRole("link", { name: "t-1" })).toHaveAttribute("href", "/tasks/t-1");
    expect(within(rows[1]).getByRole("link", { name: "t-2" })).toHaveAttribute("href", "/tasks/t-2");
  });

  it("loads older entries on demand and filters by action", async () => {
    setToken("t");
    const { requests } = stubFetch(api());
    renderApp("/audit");
    await userEvent.click(await screen.findByRole("button", { name: "Older entries" }));
    expect(await screen.findByRole("cell", { name: "pause" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Older entries" })).not.toBeInTheDocument();

    await userEvent.selectOptions(screen.getByLabelText("Action"), "pause");
    const table = await screen.findByRole("table", { name: "Audit log" });
    await expect.poll(() => within(table).getAllByRole("row").length).toBe(2);
    expect(requests.some((r) => new URL(r.url).searchParams.get("action") === "pause")).toBe(true);
  });

  it("says what would appear when nothing was done yet", async () => {
    setToken("t");
    stubFetch((url) =>
      url.pathname === "/api/v1/audit" ? jsonResponse({ items: [], next_before_id: null }) : api()(url),
    );
    renderApp("/audit");
    expect(await screen.findByText(/No operator action yet/)).toBeInTheDocument();
  });
});
