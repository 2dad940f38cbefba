import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

function retryAnswer(dryRun: boolean) {
  return {
    dry_run: dryRun,
    matched: 3,
    cap: 500,
    to_retry: 3,
    remaining: 0,
    retried: dryRun ? [] : ["a", "b", "c"].map((id) => ({ task_id: `new-${id}`, retry_of: id })),
    skipped: [],
  };
}

function api(role: "operator" | "viewer") {
  return dashboardApi({ "/api/v1/me": () => jsonResponse({ name: "alice", role }) });
}

describe("bulk actions on a history filter", () => {
  it("retries every failed task the filter matches after a confirmation naming the count", async () => {
    setToken("t");
    const bodies: Record<string, unknown>[] = [];
    const route = api("operator");
    const { fetchMock } = stubFetch(route);
    fetchMock.mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = input instanceof Request ? input : new Request(input, init);
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/failures/retry") {
        const body = (await request.json()) as Record<string, unknown>;
        bodies.push(body);
        return jsonResponse(retryAnswer(body.dry_run === true), 202);
      }
      return route(url) ?? jsonResponse({ error: "unexpected" }, 404);
    });
    renderApp("/monitoring?status=failed&task_name=emails.send&q=timeout");
    const user = userEvent.setup();

    const bulk = await screen.findByTestId("history-bulk");
    await user.click(within(bulk).getByRole("button", { name: "Retry all matching" }));
    const dialog = await within(bulk).findByRole("alertdialog", { name: "Retry matching tasks" });
    expect(dialog).toHaveTextContent("Retry 3 tasks, each as a new task?");
    expect(bodies).toEqual([{ task_name: "emails.send", q: "timeout", dry_run: true }]);

    await user.click(within(dialog).getByRole("button", { name: "Confirm retry of 3" }));
    await waitFor(() => expect(within(bulk).getByRole("status")).toHaveTextContent("Retried 3 tasks"));
    expect(bodies.at(-1)).toEqual({ task_name: "emails.send", q: "timeout", dry_run: false });
  });

  it("is offered to operators on the failed filter only", async () => {
    setToken("t");
    stubFetch(api("viewer"));
    renderApp("/monitoring?status=failed");
    await screen.findByTestId("history-total");
    expect(screen.queryByTestId("history-bulk")).not.toBeInTheDocument();
  });

  it("is not offered without the failed status", async () => {
    setToken("t");
    stubFetch(api("operator"));
    renderApp("/monitoring?status=success");
    await screen.findByTestId("history-total");
    expect(screen.queryByTestId("history-bulk")).not.toBeInTheDocument();
  });
});
