import { act, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { renderApp, stubFetch, taskEvent } from "@/testing/utils";
import { FeedStore } from "../feed-store";
import type { TaskEvent } from "../live-connection";

describe("live activity feed", () => {
  it("authenticates in the first message and shows events newest first", async () => {
    setToken("secret-1");
    stubFetch(dashboardApi());
    renderApp("/monitoring");

    const socket = FakeWebSocket.latest();
    expect(socket.url).toBe(`ws://${window.location.host}/api/v1/ws`);
    act(() => socket.open());
    expect(socket.sent[0]).toEqual({ token: "secret-1", since: null }); // a first connection resumes nothing
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
    expect(second.sent[0]).toEqual({ token: "secret-1", since: "41" });
    expect(await screen.findAllByText("live")).not.toHaveLength(0);
  });

  it("keeps the last 50 events however fast they come", () => {
    const store = new FeedStore();
    const burst: TaskEvent[] = Array.from({ length: 120 }, (_, i) =>
      taskEvent("demo.noop", "success", { task_id: `t${i}` }),
    );
    store.add(burst.slice(0, 70));
    store.add(burst.slice(70));
    const shown = store.getSnapshot();
    expect(shown).toHaveLength(50);
    expect(shown[0].event.data.task_id).toBe("t119");
    expect(shown[49].event.data.task_id).toBe("t70");
  });
});
