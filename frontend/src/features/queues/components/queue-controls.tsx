import { useSearchParams } from "react-router";
import { formatCount } from "@/lib/format";
import { type QueueName, useQueueAction } from "../api/queues";

/**
 * Pause or resume a queue (one click: either is undone by the other), and purge its waiting
 * tasks, confirmed with how many there are now: a purge cannot be undone. The open
 * confirmation is kept in the address (`?purge=<queue>`), not in this component: it then
 * survives whatever re-renders the page while the operator reads it.
 */
export function QueueControls({ queue, paused, waiting }: { queue: QueueName; paused: boolean; waiting: number }) {
  const mutation = useQueueAction(queue);
  const [params, setParams] = useSearchParams();
  const confirming = params.get("purge") === queue;
  const setConfirming = (open: boolean) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (open) next.set("purge", queue);
        else next.delete("purge");
        return next;
      },
      { replace: true },
    );
  const tasks = `${formatCount(waiting)} waiting ${waiting === 1 ? "task" : "tasks"}`;

  return (
    <span className="action">
      {confirming ? (
        <>
          <span className="small">Purge {tasks}?</span>
          <button
            type="button"
            className="button button--small button--danger"
            disabled={mutation.isPending}
            onClick={() => mutation.mutate("purge", { onSettled: () => setConfirming(false) })}
          >
            Confirm purge
          </button>
          <button type="button" className="button button--small button--ghost" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </>
      ) : (
        <>
          <button
            type="button"
            className="button button--small"
            disabled={mutation.isPending}
            aria-label={`${paused ? "Resume" : "Pause"} ${queue}`}
            onClick={() => mutation.mutate(paused ? "resume" : "pause")}
          >
            {paused ? "Resume" : "Pause"}
          </button>
          <button
            type="button"
            className="button button--small"
            disabled={mutation.isPending || waiting === 0}
            aria-label={`Purge ${queue}`}
            onClick={() => {
              mutation.reset();
              setConfirming(true);
            }}
          >
            Purge
          </button>
        </>
      )}
      {mutation.isSuccess && (
        <span className="muted small" role="status">
          {mutation.data}
        </span>
      )}
      {mutation.isError && (
        <span className="error-text small" role="alert">
          {mutation.error.message}
        </span>
      )}
    </span>
  );
}
