import type { Schemas } from "./api-client";

export type TaskStatus = Schemas["TaskStatus"];

const STAGE: Record<TaskStatus, number> = { pending: 0, running: 1, success: 2, failed: 2, cancelled: 2 };

/**
 * Whether a status of one attempt may replace another: a status never goes back. The
 * sender's `pending` and the worker's events are published by different processes and may
 * arrive in either order, so a late `pending` must not turn a running or finished attempt
 * back (a terminal status may still replace another one). A later attempt always may.
 */
export function supersedes(
  next: { attempt: number; status: TaskStatus },
  current: { attempt: number; status: TaskStatus } | null | undefined,
): boolean {
  if (current === null || current === undefined) return true;
  if (next.attempt !== current.attempt) return next.attempt > current.attempt;
  return STAGE[next.status] >= STAGE[current.status];
}
