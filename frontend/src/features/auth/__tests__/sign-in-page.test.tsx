import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { metricsResponse } from "@/testing/fixtures";
import { jsonResponse, renderApp, stubFetch } from "@/testing/utils";
import { consumeTokenFromUrl, getToken, setToken } from "@/lib/token-store";

describe("SignInPage", () => {
  it("checks a pasted token with /api/v1/me, stores it and goes to monitoring", async () => {
    const { requests } = stubFetch((url, request) => {
      const ok = request.headers.get("Authorization") === "Bearer good-token";
      if (!ok) return jsonResponse({ error: "invalid token" }, 401);
      if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role: "viewer" });
      if (url.pathname === "/api/v1/monitoring/metrics") return jsonResponse(metricsResponse);
    });
    renderApp("/sign-in");

    await userEvent.type(screen.getByLabelText("API token"), "  good-token ");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("heading", { name: "Background Task Monitoring" })).toBeInTheDocument();
    expect(getToken()).toBe("good-token");
    expect(window.location.pathname).toBe("/monitoring");
    expect(new URL(requests[0].url).pathname).toBe("/api/v1/me");
    expect(await screen.findByText("bob")).toBeInTheDocument();
  });

  it("rejects a token the API does not accept and stores nothing", async () => {
    stubFetch(() => jsonResponse({ error: "invalid token" }, 401));
    renderApp("/sign-in");

    await userEvent.type(screen.getByLabelText("API token"), "bad");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("This token was not accepted.");
    expect(getToken()).toBeNull();
    expect(window.location.pathname).toBe("/sign-in");
  });

  it("returns to the page that required sign-in", async () => {
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role: "viewer" });
      if (url.pathname === "/api/v1/monitoring/metrics") return jsonResponse(metricsResponse);
    });
    renderApp("/monitoring?time_window=6");
    expect(await screen.findByRole("heading", { name: "Sign in to TaskLens" })).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("API token"), "t");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("heading", { name: "Background Task Monitoring" })).toBeInTheDocument();
    expect(window.location.pathname + window.location.search).toBe("/monitoring?time_window=6");
  });

  it("a ?token= link the server rejects lands on sign-in saying so", async () => {
    stubFetch(() => jsonResponse({ error: "invalid token" }, 401));
    window.history.replaceState(null, "", "/monitoring?token=cut-short");
    consumeTokenFromUrl(); // as main.tsx does on load
    renderApp("/monitoring");

    expect(await screen.findByTestId("sign-in-reason")).toHaveTextContent(
      "The token in your sign-in link was not accepted",
    );
    expect(getToken()).toBeNull();
  });

  it("a token revoked while signed in lands on sign-in saying it is no longer accepted", async () => {
    let revoked = false;
    stubFetch((url) => {
      if (revoked) return jsonResponse({ error: "invalid token" }, 401);
      if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role: "viewer" });
      if (url.pathname === "/api/v1/monitoring/metrics") return jsonResponse(metricsResponse);
    });
    setToken("was-good");
    renderApp("/monitoring?window=1");
    expect(await screen.findByText("bob")).toBeInTheDocument();

    revoked = true;
    await userEvent.selectOptions(screen.getByLabelText("Time window"), "Last 24 hours"); // any call now gets 401
    expect(await screen.findByTestId("sign-in-reason")).toHaveTextContent("your token is no longer accepted");
  });

  it("a sign-out by hand gives no reason", async () => {
    stubFetch((url) => {
      if (url.pathname === "/api/v1/me") return jsonResponse({ name: "bob", role: "viewer" });
      if (url.pathname === "/api/v1/monitoring/metrics") return jsonResponse(metricsResponse);
    });
    setToken("good");
    renderApp("/monitoring");
    await userEvent.click(await screen.findByRole("button", { name: "Sign out" }));
    expect(await screen.findByRole("heading", { name: "Sign in to TaskLens" })).toBeInTheDocument();
    expect(screen.queryByTestId("sign-in-reason")).toBeNull();
  });
});
