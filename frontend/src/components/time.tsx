import { formatDateTime, formatRelative } from "@/lib/format";
import { useTimeZone } from "@/lib/time-zone";

/** A moment as "5 min ago", its full date and time (in the chosen zone) on hover. */
export function RelativeTime({ iso }: { iso: string | null }) {
  const zone = useTimeZone();
  if (iso === null) return <>—</>;
  return (
    <time dateTime={iso} title={formatDateTime(iso, zone)}>
      {formatRelative(iso)}
    </time>
  );
}
