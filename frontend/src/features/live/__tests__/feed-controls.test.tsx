import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { setToken } from "@/lib/token-store";
import { dashboardApi } from "@/testing/fixtures";
import { FakeWebSocket } from "@/testing/fake-websocket";
import { renderApp, stubFetch, taskEvent } from "@/testing/utils";

/** The dashboard with its socket open; `send` plays the server. */
function openDashboard() {
  setToken("secret-1");
  stubFetch(dashboardApi());
  renderApp("/monitoring");
  const socket = FakeWebSocket.latest();
  act(() => socket.open());
  const send = (...frames: unknown[]) => {
    act(() => {
      for (const frame of frames) socket.serverSend(frame);
    });
  };
  return { socket, send, user: userEvent.setup() };
}

/** The feed's entries (task:attempt:status), newest first. */
function feedItems(): string[] {
  const list = screen.getByRole("list", { name: "Recent task events" });
  return within(list)
    .getAllByRole("listitem")
    .map((item) => item.getAttribute("data-event-key") ?? "");
}

/** Events reach the feed once per animation frame: wait for the list to read `keys`. */
async function expectFeed(keys: string[]): Promise<void> {
  await waitFor(() => expect(feedItems()).toEqual(keys));
}

const feed = () => within(screen.getByRole("region", { name: "Live activity" }));
const feedStatus = () => feed().getAllByRole("status")[1];
const nameFilter = () => feed().getByRole("combobox", { name: "Show events of" });

describe("live feed: backfill, filter, pause", () => {
  it("opens on the newest events the server holds, then adds live ones above them", async () => {
    const { socket, send } = openDashboard();
    expect(socket.sent[0]).toMatchObject({ since: null, backfill: 50 });
    // The server answers the backfill right after hello, oldest first, as they happened.
    send(
      taskEvent("emails.send", "pending", { task_id: "old" }, "1"),
      taskEvent("emails.send", "success", { task_id: "old" }, "2"),
    );
    await expectFeed(["old:1:success", "old:1:pending"]);
    send(taskEvent("reports.build", "running", { task_id: "new" }, "3"));
    await expectFeed(["new:1:running", "old:1:success", "old:1:pending"]);
  });

  it("filters by a task name chosen from every known name and the feed's own", async () => {
    const { send, user } = openDashboard();
    send(
      taskEvent("demo.noop", "success", { task_id: "n" }),
      taskEvent("reports.build", "running", { task_id: "r" }),
      taskEvent("emails.send", "success", { task_id: "e" }),
    );
    const select = nameFilter();
    // emails.send and reports.build from /monitoring/task-names, demo.noop from the feed
    await feed().findByRole("option", { name: "reports.build" });
    expect(
      within(select)
        .getAllByRole("option")
        .map((o) => o.textContent),
    ).toEqual(["All tasks", "demo.noop", "emails.send", "reports.build"]);

    await user.selectOptions(select, "reports.build");
    await expectFeed(["r:1:running"]);
    send(
      taskEvent("emails.send", "pending", { task_id: "e2" }),
      taskEvent("reports.build", "success", { task_id: "r" }),
    );
    await expectFeed(["r:1:success", "r:1:running"]);

    await user.selectOptions(select, "");
    await waitFor(() => expect(feedItems()).toHaveLength(5));
  });

  it("says so when the chosen task has no event in the feed", async () => {
    const { send, user } = openDashboard();
    send(taskEvent("demo.noop", "success", { task_id: "n" }));
    await feed().findByRole("option", { name: "emails.send" });
    await user.selectOptions(nameFilter(), "emails.send");
    expect(screen.queryByRole("list", { name: "Recent task events" })).toBeNull();
    expect(screen.getByText(/No events of/)).toHaveTextContent("No events of emails.send among the last 500 events.");
  });

  it("pauses: the list stands still, counts what arrives, and shows it on resume", async () => {
    const { send, user } = openDashboard();
    send(taskEvent("demo.noop", "success", { task_id: "a" }));
    await expectFeed(["a:1:success"]);
    const pause = screen.getByRole("button", { name: "Pause" });
    expect(pause).toHaveAttribute("aria-pressed", "false");
    await user.click(pause);
    expect(screen.getByRole("button", { name: "Resume" })).toHaveAttribute("aria-pressed", "true");
    await waitFor(() => expect(feedStatus()).toHaveTextContent(/^Paused · 0 new events$/));

    send(taskEvent("emails.send", "pending", { task_id: "b" }));
    await waitFor(() => expect(feedStatus()).toHaveTextContent(/^Paused · 1 new event$/));
    send(taskEvent("emails.send", "success", { task_id: "b" }), taskEvent("demo.noop", "success", { task_id: "c" }));
    await waitFor(() => expect(feedStatus()).toHaveTextContent(/^Paused · 3 new events$/));
    expect(feedItems()).toEqual(["a:1:success"]); // still as it was

    // The count follows the filter: what is new for the task shown.
    await user.selectOptions(nameFilter(), "emails.send");
    await waitFor(() => expect(feedStatus()).toHaveTextContent(/^Paused · 2 new events$/));
    await user.selectOptions(nameFilter(), "");

    await user.click(screen.getByRole("button", { name: "Resume" }));
    await expectFeed(["c:1:success", "b:1:success", "b:1:pending", "a:1:success"]);
    expect(feedStatus()).toBeEmptyDOMElement();
    send(taskEvent("demo.noop", "success", { task_id: "d" }));
    await waitFor(() => expect(feedItems()[0]).toBe("d:1:success")); // live again
  });

  it("keeps at most 500 events while paused, and says there were more", async () => {
    const { send, user } = openDashboard();
    send(taskEvent("demo.noop", "success", { task_id: "first" }));
    await expectFeed(["first:1:success"]);
    await user.click(screen.getByRole("button", { name: "Pause" }));
    send(...Array.from({ length: 620 }, (_, i) => taskEvent("demo.noop", "success", { task_id: `t${i}` })));
    await waitFor(() => expect(feedStatus()).toHaveTextContent(/^Paused · 500\+ new events$/));
    expect(feedItems()).toEqual(["first:1:success"]);

    await user.click(screen.getByRole("button", { name: "Resume" }));
    await waitFor(() => expect(feedItems()).toHaveLength(50)); // the newest 50 of the 500 kept
    const shown = feedItems();
    expect(shown[0]).toBe("t619:1:success");
    expect(shown[49]).toBe("t570:1:success");
  });
});
