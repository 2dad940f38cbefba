import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import indexHtml from "../../../../index.html?raw";
import { EARLY_FRESH_MS, takeEarlyResponse } from "@/lib/early-fetch";
import { setToken } from "@/lib/token-store";
import { dashboardApi, emptyHistory } from "@/testing/fixtures";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";

/** Runs index.html's inline script, as the browser does before the app's code loads. */
function runEarlyScript(path: string) {
  window.history.replaceState(null, "", path);
  const script = /<script>([\s\S]*?)<\/script>/.exec(indexHtml)?.[1];
  if (script === undefined) throw new Error("index.html has no inline script");
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the page's own script, as the browser runs it
  const run = new Function(script) as () => void;
  run();
}

const paths = (requests: Request[], pathname: string) =>
  requests.filter((r) => new URL(r.url).pathname === pathname).map((r) => new URL(r.url).search);

afterEach(() => {
  delete window.__tasklensEarly;
});

describe("index.html's early requests", () => {
  it("are the monitoring page's own: it takes them instead of asking again", async () => {
    setToken("secret-1");
    const { requests } = stubFetch(dashboardApi());
    runEarlyScript("/monitoring");
    expect(requests.map((r) => new URL(r.url).pathname)).toEqual([
      "/api/v1/monitoring/metrics",
      "/api/v1/monitoring/history",
    ]);
    expect(requests[0].headers.get("Authorization")).toBe("Bearer secret-1");

    renderApp("/monitoring");
    expect(await screen.findByRole("article", { name: "reports.build" })).toBeInTheDocument();
    await screen.findByText("alice"); // every other request of the page has been made
    expect(paths(requests, "/api/v1/monitoring/metrics")).toEqual(["?time_window=24"]);
    expect(paths(requests, "/api/v1/monitoring/history")).toHaveLength(1);
    expect(window.__tasklensEarly?.responses.size).toBe(0);
  });

  it("follow the time window; with history filters in the address only the cards are early", async () => {
    setToken("secret-1");
    const { requests } = stubFetch(dashboardApi());
    runEarlyScript("/monitoring?window=168&status=failed");
    expect(requests).toHaveLength(1);

    renderApp("/monitoring?window=168&status=failed");
    expect(await screen.findByRole("article", { name: "reports.build" })).toBeInTheDocument();
    await screen.findByText("alice");
    expect(paths(requests, "/api/v1/monitoring/metrics")).toEqual(["?time_window=168"]);
    expect(paths(requests, "/api/v1/monitoring/history")).toEqual(["?status=failed&sort=-created&page=1&page_size=25"]);
  });

  it("are not made without a token or on another page", () => {
    const { requests } = stubFetch(dashboardApi());
    runEarlyScript("/monitoring");
    setToken("secret-1");
    runEarlyScript("/queues");
    expect(requests).toHaveLength(0);
    expect(window.__tasklensEarly).toBeUndefined();
  });

  it("are used once, with the same token, while fresh", async () => {
    const url = `${window.location.origin}/api/v1/monitoring/history?page=1`;
    const early = (at = performance.now()) => {
      window.__tasklensEarly = {
        token: "a",
        at,
        responses: new Map([["/api/v1/monitoring/history?page=1", Promise.resolve(jsonResponse(emptyHistory))]]),
      };
    };
    const get = (token: string) => new Request(url, { headers: { Authorization: `Bearer ${token}` } });

    early();
    expect(takeEarlyResponse(get("b"))).toBeUndefined();
    early();
    expect(
      takeEarlyResponse(new Request(url, { method: "POST", headers: { Authorization: "Bearer a" } })),
    ).toBeUndefined();
    expect(await takeEarlyResponse(get("a"))?.then((r) => r.json())).toEqual(emptyHistory);
    expect(takeEarlyResponse(get("a"))).toBeUndefined();
    early(performance.now() - EARLY_FRESH_MS - 1);
    expect(takeEarlyResponse(get("a"))).toBeUndefined();
  });
});
