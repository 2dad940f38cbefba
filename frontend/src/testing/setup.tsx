import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach, beforeEach, vi } from "vitest";
import { FakeWebSocket } from "./fake-websocket";

beforeEach(() => {
  FakeWebSocket.instances = [];
  vi.stubGlobal("WebSocket", FakeWebSocket);
});

afterEach(() => {
  cleanup();
  window.localStorage.clear();
  window.history.replaceState(null, "", "/");
});

// jsdom has no canvas, so chart.js cannot draw here: charts render as a labelled stand-in
// (their data checked through props), and the real drawing is covered by the browser tests.
vi.mock("react-chartjs-2", () => {
  const stand = (kind: string) =>
    function ChartStandIn({ data }: { data: { labels?: unknown[]; datasets: { label?: string }[] } }) {
      return `${kind} chart: ${data.datasets.map((d) => d.label).join(", ")} (${data.labels?.length ?? 0} points)`;
    };
  return { Line: stand("line"), Bar: stand("bar") };
});
