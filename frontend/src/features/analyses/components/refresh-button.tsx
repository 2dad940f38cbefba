import { useNow } from "@/lib/use-now";
import { useSubmitAnalysis, type AnalysisKind, type AnalysisSubmitted, type Period } from "../api/analyses";

/** Seconds left until `deadline` (a Date.now() time), ticking every second. */
function useSecondsUntil(deadline: number | null): number {
  const now = useNow(deadline !== null);
  return deadline === null ? 0 : Math.max(0, Math.ceil((deadline - now) / 1000));
}

function mmss(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/**
 * "Refresh now": a forced run, limited per user by the server. Past the limit the server
 * answers 429 with Retry-After, shown as a countdown until the button works again. The
 * deadline is the page's (`blockedUntil`): the button is hidden while the report updates,
 * and the countdown must survive that.
 */
export function RefreshButton({
  kind,
  subject,
  period,
  onStarted,
  blockedUntil,
  onBlocked,
}: {
  kind: AnalysisKind;
  subject: string;
  period: Period;
  onStarted: (accepted: AnalysisSubmitted) => void;
  blockedUntil: number | null;
  onBlocked: (until: number) => void;
}) {
  const submit = useSubmitAnalysis();
  const wait = useSecondsUntil(blockedUntil);
  const blocked = wait > 0;

  function refresh() {
    submit.mutate(
      { kind, subject, params: { period }, priority: "high", force: true },
      {
        onSuccess: onStarted,
        onError: (error) => {
          if (error.status === 429) onBlocked(Date.now() + (error.retryAfter ?? 60) * 1000);
        },
      },
    );
  }

  return (
    <span className="action">
      <button type="button" className="button button--primary" disabled={blocked || submit.isPending} onClick={refresh}>
        {submit.isPending ? "Starting…" : "Refresh now"}
      </button>
      {blocked && (
        <span className="muted small" role="status" data-testid="refresh-countdown">
          Refresh limit reached: you can refresh again in {mmss(wait)}
        </span>
      )}
      {submit.isError && submit.error.status !== 429 && (
        <span className="error-text small" role="alert">
          {submit.error.message}
        </span>
      )}
    </span>
  );
}
