import { setTimeZone, useTimeZone } from "@/lib/time-zone";

/** Shows which clock times are in, and switches between the browser's and UTC. */
export function TimeZoneSwitch() {
  const zone = useTimeZone();
  return (
    <button
      type="button"
      className="button button--ghost button--small"
      title="Times are shown in this zone; click to switch"
      aria-label={`Times in ${zone === "utc" ? "UTC" : "local time"}; switch to ${zone === "utc" ? "local time" : "UTC"}`}
      onClick={() => setTimeZone(zone === "utc" ? "local" : "utc")}
    >
      {zone === "utc" ? "UTC" : "Local time"}
    </button>
  );
}
