"""Every Redis key and channel TaskLens names, in one place (as arq keeps its own).

Deployments that share a Redis server see TaskLens's whole namespace here. The library's
keys are what a TaskIQ app's workers write; the server's (below them) are read and written by
`tasklens serve`, `worker` and `scheduler`, which import them from here. The task queues
themselves are Redis streams named after `TASKLENS_QUEUE_NAME` (`priorities.py`).
"""

from __future__ import annotations

# The library's: written by every worker that runs TaskLensMiddleware.
EVENTS_STREAM = "tasklens:events"  # lifecycle events, capped (event_stream.py)
CONTROL_CHANNEL = "tasklens:control"  # pub/sub: cancel requests (cancellation.py)
CANCELLED = "tasklens:cancelled"  # sorted set: task ids cancelled lately, by time
WORKERS = "tasklens:workers"  # hash: worker id -> its last heartbeat (heartbeat.py)
WORKER_HELD_PREFIX = "tasklens:workers:held:"  # + worker id: the task ids it holds
LOG_SPILL = "tasklens:unwritten"  # stream: log rows the database did not take (log_spill.py)
LOG_ROWS_DROPPED = "tasklens:log:rows_dropped"  # counter: rows neither written nor spilled

# The server's.
DELAYED = "tasklens:delayed"  # sorted set: messages waiting for their time (broker.py)
PAUSED_QUEUES = "tasklens:paused"  # set: queue streams workers take nothing from (broker.py)
LOST_MESSAGES = "tasklens:lost_messages"  # counter: rows closed as lost (lost_messages.py)
LOST_MESSAGES_LEASE_PREFIX = "tasklens:reaper:lost-messages:"  # + the first queue stream
REAPER_LEASE_PREFIX = "tasklens:reaper:lease:"  # + the queue name: who reaps (reaper.py)
CLAIM_PREFIX = "tasklens:claim:"  # + claim key: who regenerates a report (coordination.py)
RATE_LIMIT_PREFIX = "tasklens:rate:"  # + token: report refreshes (rate_limit.py)
AUTH_FAILURES_PREFIX = "tasklens:auth-failures:"  # + client address: failed sign-ins
ALERTS_LEASE = "tasklens:alerts:lease"  # the API process that evaluates alerts (lease.py)


def schedule_fired(queue_name: str, schedule_id: str, period_start: int) -> str:
    """The claim one scheduler takes to send a schedule once in a period (schedule_lease.py)."""
    return f"{queue_name}:schedule-fired:{schedule_id}:{period_start}"


def schedule_sent(queue_name: str, schedule_id: str) -> str:
    """The task a schedule last sent, and when (schedule_runs.py)."""
    return f"{queue_name}:schedule-sent:{schedule_id}"
