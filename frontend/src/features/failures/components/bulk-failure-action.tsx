import { formatCountOf } from "@/lib/format";
import { useBulkAction, type BulkAction, type BulkOutcome, type BulkTarget } from "../api/failures";

const VERB = { retry: "Retry", dismiss: "Dismiss" } as const;

function confirmation(outcome: BulkOutcome): { text: string; count: number } {
  if (outcome.action === "dismiss") {
    const n = outcome.result.matched;
    return { text: `Dismiss ${formatCountOf(n, "task")} from the failure views? Their log rows stay.`, count: n };
  }
  const { to_retry: n, remaining, cap } = outcome.result;
  const over =
    remaining > 0 ? ` ${formatCountOf(remaining, "more task")} wait for another retry (at most ${cap} at a time).` : "";
  return { text: `Retry ${formatCountOf(n, "task")}, each as a new task?${over}`, count: n };
}

function done(outcome: BulkOutcome): string {
  if (outcome.action === "dismiss") return `Dismissed ${formatCountOf(outcome.result.dismissed, "task")}`;
  const { retried, skipped } = outcome.result;
  const refused = skipped.length > 0 ? `; ${skipped.length} refused: ${skipped[0]?.error ?? ""}` : "";
  return `Retried ${formatCountOf(retried.length, "task")}${refused}`;
}

/**
 * Retry or dismiss a group's tasks, or a history filter's failed tasks: the first click
 * counts them (a dry run), the confirmation names that count, and only "Confirm" acts. The
 * outcome goes to `onDone` (a retried or dismissed group leaves the failures list).
 */
export function BulkFailureAction({
  target,
  action,
  onDone,
}: {
  target: BulkTarget;
  action: BulkAction;
  onDone?: (outcome: string) => void;
}) {
  const byFilter = "filter" in target;
  const label = `${VERB[action]} all${byFilter ? " matching" : ""}`;
  const counting = useBulkAction(target, action);
  const acting = useBulkAction(target, action);
  const error = counting.error ?? acting.error;

  if (acting.isSuccess) {
    return (
      <span className="muted small" role="status">
        {done(acting.data)}
      </span>
    );
  }
  const confirm = () =>
    acting.mutate(false, {
      onSuccess: (outcome) => onDone?.(done(outcome)),
    });
  const preview = counting.data;
  return (
    <span className="action">
      {preview ? (
        <span
          role="alertdialog"
          aria-label={`${VERB[action]} ${byFilter ? "matching tasks" : "group"}`}
          className="confirm"
        >
          <span className="small">{confirmation(preview).text}</span>{" "}
          {confirmation(preview).count > 0 && (
            <button
              type="button"
              className="button button--small button--danger"
              disabled={acting.isPending}
              onClick={confirm}
            >
              Confirm {action} of {confirmation(preview).count}
            </button>
          )}
          <button type="button" className="button button--small button--ghost" onClick={() => counting.reset()}>
            Keep
          </button>
        </span>
      ) : (
        <button
          type="button"
          className="button button--small"
          disabled={counting.isPending}
          onClick={() => counting.mutate(true)}
        >
          {label}
        </button>
      )}
      {error && (
        <span className="error-text small" role="alert">
          {error.message}
        </span>
      )}
    </span>
  );
}
