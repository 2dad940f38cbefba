import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";
import { pageNumbers } from "../pages";

function historyApi(total: number) {
  const seen: URLSearchParams[] = [];
  const route = dashboardApi();
  return {
    seen,
    route: (url: URL) => {
      if (url.pathname !== "/api/v1/monitoring/history") return route(url);
      seen.push(url.searchParams);
      const page = Number(url.searchParams.get("page"));
      return jsonResponse({ total_count: total, page, page_size: 25, total_pages: Math.ceil(total / 25), items: [] });
    },
  };
}

const url = () => new URLSearchParams(window.location.search);

describe("history search", () => {
  it("sends the search once typing pauses, keeps it in the URL, and starts at page 1", async () => {
    setToken("t");
    const api = historyApi(60);
    stubFetch(api.route);
    renderApp("/monitoring?page=2");
    const user = userEvent.setup();
    await screen.findByText("Page 2 of 3", undefined, { timeout: 5_000 }); // the app's first load

    await user.type(screen.getByLabelText("Search"), "c0ffee");
    await waitFor(() => expect(api.seen.at(-1)!.get("q")).toBe("c0ffee"));
    // One request for the whole word, not one per key.
    expect(api.seen.filter((q) => q.get("q") !== null)).toHaveLength(1);
    expect([url().get("q"), url().get("page")]).toEqual(["c0ffee", null]);
    expect(api.seen.at(-1)!.get("page")).toBe("1");

    await user.type(screen.getByLabelText("Worker"), "host-b:2{Enter}");
    await waitFor(() => expect(api.seen.at(-1)!.get("worker")).toBe("host-b:2"));
    expect(api.seen.at(-1)!.get("q")).toBe("c0ffee");

    await user.selectOptions(screen.getByLabelText("Order"), "Longest first");
    await waitFor(() => expect(api.seen.at(-1)!.get("sort")).toBe("-duration"));
    expect(url().get("sort")).toBe("-duration");
  });

  it("a shared address fills the search fields, and the back button restores them", async () => {
    setToken("t");
    const api = historyApi(10);
    stubFetch(api.route);
    renderApp("/monitoring?q=emails&queue=tasklens%3Ahigh&sort=duration");
    const user = userEvent.setup();
    const search = await screen.findByLabelText("Search");
    expect(search).toHaveValue("emails");
    expect(screen.getByLabelText("Queue")).toHaveValue("tasklens:high");
    expect(screen.getByLabelText("Order")).toHaveValue("duration");
    await waitFor(() => expect(api.seen.length).toBeGreaterThan(0));
    const sent = api.seen.at(-1)!;
    expect([sent.get("q"), sent.get("queue"), sent.get("sort")]).toEqual(["emails", "tasklens:high", "duration"]);

    await user.clear(search);
    await user.type(search, "reports{Enter}");
    await waitFor(() => expect(url().get("q")).toBe("reports"));
    window.history.back();
    await waitFor(() => expect(screen.getByLabelText("Search")).toHaveValue("emails"));
    await waitFor(() => expect(api.seen.at(-1)!.get("q")).toBe("emails"));
  });

  it("page numbers jump straight to a page", async () => {
    setToken("t");
    const api = historyApi(500);
    stubFetch(api.route);
    renderApp("/monitoring?page=7");
    const user = userEvent.setup();
    await screen.findByText("Page 7 of 20");
    expect(screen.getByRole("button", { name: "Page 7" })).toHaveAttribute("aria-current", "page");
    await user.click(screen.getByRole("button", { name: "Page 20" }));
    await screen.findByText("Page 20 of 20");
    expect(url().get("page")).toBe("20");
  });
});

describe("page numbers", () => {
  it("show the ends and two either side of the current page", () => {
    expect(pageNumbers(7, 20)).toEqual([1, null, 5, 6, 7, 8, 9, null, 20]);
    expect(pageNumbers(1, 3)).toEqual([1, 2, 3]);
    expect(pageNumbers(4, 9)).toEqual([1, 2, 3, 4, 5, 6, null, 9]); // a gap of one is its page
    expect(pageNumbers(1, 1)).toEqual([1]);
  });
});
