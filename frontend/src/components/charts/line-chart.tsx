import { Line } from "react-chartjs-2";
import { baseOptions, themeColor } from "./register";

export type Series = { label: string; values: (number | null)[]; color: string; fill?: boolean };

/** A lone value has no line to sit on: it is drawn as a point, or the chart looks empty. */
export function pointRadiusFor(values: (number | null)[]): number {
  return values.filter((v) => v !== null).length === 1 ? 4 : 0;
}

/** Lines over shared x labels. `color` names a CSS variable such as "--good". */
export default function LineChart({ labels, series, yTitle }: { labels: string[]; series: Series[]; yTitle?: string }) {
  const options = baseOptions();
  return (
    <Line
      data={{
        labels,
        datasets: series.map((s) => ({
          label: s.label,
          data: s.values,
          borderColor: themeColor(s.color),
          backgroundColor: themeColor(s.color) + "33",
          fill: s.fill ?? false,
          pointRadius: pointRadiusFor(s.values),
          pointBackgroundColor: themeColor(s.color),
          borderWidth: 2,
          tension: 0.2,
          spanGaps: true,
        })),
      }}
      options={{
        ...options,
        interaction: { mode: "index", intersect: false },
        scales: {
          ...options.scales,
          y: { ...options.scales.y, title: { display: yTitle !== undefined, text: yTitle ?? "" } },
        },
      }}
    />
  );
}
