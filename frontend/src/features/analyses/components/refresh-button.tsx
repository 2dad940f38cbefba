import { useCallback, useEffect, useState } from "react";
import { useSubmitAnalysis, type AnalysisKind, type Period } from "../api/analyses";

/** Seconds left of a countdown begun with `start`, ticking every second. */
function useCountdown(): { seconds: number; start: (seconds: number) => void } {
  const [deadline, setDeadline] = useState<number | null>(null);
  const [now, setNow] = useState(0);
  useEffect(() => {
    if (deadline === null) return;
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, [deadline]);
  const start = useCallback((seconds: number) => {
    const startedAt = Date.now();
    setNow(startedAt);
    setDeadline(startedAt + seconds * 1000);
  }, []);
  return { seconds: deadline === null ? 0 : Math.max(0, Math.ceil((deadline - now) / 1000)), start };
}

function mmss(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/**
 * "Refresh now": a forced run, limited per user by the server. Past the limit the server
 * answers 429 with Retry-After, shown as a countdown until the button works again.
 */
export function RefreshButton({
  kind,
  subject,
  period,
  onStarted,
}: {
  kind: AnalysisKind;
  subject: string;
  period: Period;
  onStarted: (taskId: string) => void;
}) {
  const submit = useSubmitAnalysis();
  const { seconds: wait, start: block } = useCountdown();
  const blocked = wait > 0;

  function refresh() {
    submit.mutate(
      { kind, subject, params: { period }, priority: "high", force: true },
      {
        onSuccess: (accepted) => onStarted(accepted.task_id),
        onError: (error) => {
          if (error.status === 429) block(error.retryAfter ?? 60);
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
