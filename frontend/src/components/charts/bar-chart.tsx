import { Bar } from "react-chartjs-2";
import { baseOptions, themeColor } from "./register";

/** One series of bars; horizontal suits long category names (languages, files). */
export default function BarChart({
  labels,
  values,
  label,
  color = "--accent",
  horizontal = false,
}: {
  labels: string[];
  values: number[];
  label: string;
  color?: string;
  horizontal?: boolean;
}) {
  return (
    <Bar
      data={{ labels, datasets: [{ label, data: values, backgroundColor: themeColor(color), borderRadius: 3 }] }}
      options={{ ...baseOptions(), indexAxis: horizontal ? "y" : "x", plugins: { legend: { display: false } } }}
    />
  );
}
