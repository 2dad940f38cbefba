import type { TaskDetail } from "@/features/tasks";

export type Attempt = TaskDetail["attempts"][number];

/** One line of the task page's timeline: what happened, when, and how long it took. */
export type TimelineStep = {
  key: string;
  kind: "enqueued" | "waited" | "started" | "ran" | "finished" | "retry-delay" | "waiting" | "running";
  label: string;
  /** The moment the step begins (ISO), when known. */
  at: string | null;
  /** How long the step lasted (or has lasted so far, for `waiting`/`running`), when known. */
  durationMs: number | null;
  attempt: number;
};

const ms = (iso: string) => new Date(iso).getTime();
const between = (from: string | null, to: string | null) =>
  from !== null && to !== null ? Math.max(0, ms(to) - ms(from)) : null;

const FINISHED_LABEL: Partial<Record<string, string>> = {
  success: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

/**
 * Every attempt as steps: enqueued, waited in the queue, started, ran, finished; between
 * two attempts the delay before the retry was enqueued. An unfinished attempt ends in a
 * step that is still going (its duration measured to `now`).
 */
export function buildTimeline(attempts: readonly Attempt[], now: number): TimelineStep[] {
  const steps: TimelineStep[] = [];
  let previous: Attempt | null = null;
  for (const a of attempts) {
    const n = a.attempt;
    const step = (kind: TimelineStep["kind"], label: string, at: string | null, durationMs: number | null) =>
      steps.push({ key: `${n}:${kind}`, kind, label, at, durationMs, attempt: n });
    if (previous !== null) {
      const ended = previous.completed_at ?? previous.started_at;
      step("retry-delay", `Retry delay before attempt ${n}`, ended, between(ended, a.created_at));
    }
    step("enqueued", n === 1 ? "Enqueued" : `Attempt ${n} enqueued`, a.created_at, null);
    if (a.started_at === null) {
      if (a.status === "pending") {
        step("waiting", "Waiting in the queue", a.created_at, Math.max(0, now - ms(a.created_at)));
      }
    } else {
      step("waited", "Waited in the queue", a.created_at, between(a.created_at, a.started_at));
      step("started", `Started on ${a.worker ?? "a worker"}`, a.started_at, null);
      if (a.status === "running") {
        step("running", "Running", a.started_at, Math.max(0, now - ms(a.started_at)));
      } else {
        step("ran", "Ran", a.started_at, a.duration_ms ?? between(a.started_at, a.completed_at));
      }
    }
    const finished = FINISHED_LABEL[a.status];
    if (finished !== undefined) {
      const reason = a.error_message ? `: ${a.error_message}` : "";
      step("finished", `${finished}${reason}`, a.completed_at, null);
    }
    previous = a;
  }
  return steps;
}
