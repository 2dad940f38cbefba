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
// (their data checked through props: `data-datasets` holds each dataset's label, values and
// point radius), and the real drawing is covered by the browser tests.
vi.mock("react-chartjs-2", () => {
  type Dataset = { label?: string; data?: unknown[]; pointRadius?: unknown };
  const stand = (kind: string) =>
    function ChartStandIn({ data }: { data: { labels?: unknown[]; datasets: Dataset[] } }) {
      const datasets = data.datasets.map(({ label, data: values, pointRadius }) => ({ label, values, pointRadius }));
      return (
        <span data-chart={kind} data-datasets={JSON.stringify(datasets)}>
          {`${kind} chart: ${data.datasets.map((d) => d.label).join(", ")} (${data.labels?.length ?? 0} points)`}
        </span>
      );
    };
  return { Line: stand("line"), Bar: stand("bar") };
});
