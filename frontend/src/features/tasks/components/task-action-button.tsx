import { useState } from "react";
import { useTaskAction } from "../api/tasks";

const LABELS = { retry: "Retry", cancel: "Cancel" } as const;

/**
 * Retry or cancel one task, confirmed first (a second click on "Confirm"), with the
 * outcome shown next to it.
 */
export function TaskActionButton({
  taskId,
  action,
  onSettled,
}: {
  taskId: string;
  action: "retry" | "cancel";
  /** Called when the action succeeded or failed: the caller refreshes what shows the task. */
  onSettled?: () => void;
}) {
  const mutation = useTaskAction(action, onSettled);
  const [confirming, setConfirming] = useState(false);

  if (mutation.isSuccess) {
    return (
      <span className="muted small" role="status">
        {mutation.data}
      </span>
    );
  }
  return (
    <span className="action">
      {confirming ? (
        <>
          <button
            type="button"
            className="button button--small button--danger"
            disabled={mutation.isPending}
            onClick={() => mutation.mutate(taskId)}
          >
            Confirm {action}
          </button>
          <button type="button" className="button button--small button--ghost" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </>
      ) : (
        <button type="button" className="button button--small" onClick={() => setConfirming(true)}>
          {LABELS[action]}
        </button>
      )}
      {mutation.isError && (
        <span className="error-text small" role="alert">
          {mutation.error.message}
        </span>
      )}
    </span>
  );
}
