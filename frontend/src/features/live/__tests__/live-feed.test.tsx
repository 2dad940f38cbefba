import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { renderApp, stubFetch, taskEvent } from "@/testing/utils";
import { FEED_RETAINED, FeedStore } from "../feed-store";
import type { TaskEvent } from "../live-connection";

describe("live activity feed", () => {
  it("authenticates in the first message and shows events newest first", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi());
    renderApp("/monitoring");

    const socket = FakeWebSocket.latest();
    expect(socket.url).toBe(`ws://${window.location.host}/api/v1/ws`);
    act(() => socket.open());
    // A first connection resumes nothing: it asks for the newest 50 events instead.
    expect(socket.sent[0]).toEqual({ token: "secret-1", since: null, backfill: 50 });
    expect(await screen.findAllByText("live")).not.toHaveLength(0);

    act(() => {
      socket.serverSend(taskEvent("reports.build", "running", { task_id: "a" }, "1"));
      socket.serverSend(taskEvent("reports.build", "success", { task_id: "a", duration_ms: 1234 }, "2"));
    });
    const feed = await screen.findByRole("list", { name: "Recent task events" });
    const items = within(feed).getAllByRole("listitem");
    expect(items.map((i) => i.textContent)).toEqual([
      expect.stringMatching(/^reports\.build success at \d\d:\d\d:\d\d \(1\.23 s\)$/),
      expect.stringMatching(/^reports\.build running at \d\d:\d\d:\d\d$/),
    ]);
    expect(items[0]).toHaveClass("status--success");
  });

  it("reconnects after the server goes away and asks for what it missed", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi());
    renderApp("/monitoring");
    const first = FakeWebSocket.latest();
    act(() => {
      first.open();
      first.serverSend(taskEvent("emails.send", "success", {}, "41"));
    });
    act(() => first.serverClose());
    expect(screen.getAllByText("reconnecting…")).not.toHaveLength(0);

    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(2), { timeout: 3000 });
    const second = FakeWebSocket.latest();
    act(() => second.open());
    expect(second.sent[0]).toEqual({ token: "secret-1", since: "41", backfill: null }); // no second backfill
    expect(await screen.findAllByText("live")).not.toHaveLength(0);
  });

  it("never shows a task going back: a late pending lands below the task's later states", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi());
    renderApp("/monitoring");
    const socket = FakeWebSocket.latest();
    act(() => {
      socket.open();
      // The worker's events overtake the API's `pending`, which comes from another process.
      socket.serverSend(taskEvent("reports.build", "running", { task_id: "a" }, "1"));
      socket.serverSend(taskEvent("emails.send", "pending", { task_id: "b" }, "2"));
      socket.serverSend(taskEvent("reports.build", "success", { task_id: "a", duration_ms: 10 }, "3"));
    });
    act(() => socket.serverSend(taskEvent("reports.build", "pending", { task_id: "a" }, "4")));

    const feed = await screen.findByRole("list", { name: "Recent task events" });
    await waitFor(() => expect(within(feed).getAllByRole("listitem")).toHaveLength(4));
    const shown = within(feed)
      .getAllByRole("listitem")
      .map((item) => item.getAttribute("data-event-key"));
    // Down the list a task only goes back in its life: success, running, then the late pending.
    expect(shown).toEqual(["a:1:success", "b:1:pending", "a:1:running", "a:1:pending"]);
  });

  it("orders each task's states by how far it got, attempts included", () => {
    const store = new FeedStore();
    const event = (status: TaskEvent["status"], attempt = 1, task_id = "a") =>
      taskEvent("reports.build", status, { task_id, attempt });
    store.add([event("failed"), event("pending", 2)]);
    store.add([event("running"), event("success", 2), event("running", 2)]);
    const shown = store.getSnapshot().map(({ event: e }) => `${e.data.attempt}:${e.status}`);
    // Newest first, and down the list a task only ever goes back in its life, never forward.
    expect(shown).toEqual(["2:success", "2:running", "2:pending", "1:failed", "1:running"]);
  });

  it("drops a late event whose later states have left the feed", () => {
    const store = new FeedStore(3);
    const event = (status: TaskEvent["status"], task_id: string) => taskEvent("demo.noop", status, { task_id });
    store.add([event("success", "old")]);
    store.add([event("success", "x"), event("success", "y"), event("success", "z")]);
    store.add([event("pending", "old")]);
    expect(store.getSnapshot().map((e) => e.event.data.task_id)).toEqual(["z", "y", "x"]);
  });

  it("keeps the last 500 events however fast they come", () => {
    const store = new FeedStore();
    const burst: TaskEvent[] = Array.from({ length: 1_200 }, (_, i) =>
      taskEvent("demo.noop", "success", { task_id: `t${i}` }),
    );
    store.add(burst.slice(0, 700));
    store.add(burst.slice(700));
    const kept = store.getSnapshot();
    expect(kept).toHaveLength(FEED_RETAINED);
    expect(kept[0].event.data.task_id).toBe("t1199");
    expect(kept[499].event.data.task_id).toBe("t700");
  });
});
