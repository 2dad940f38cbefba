"""The `tasklens worker` arm of the throughput benchmark: the broker exactly as `tasklens
worker` wires it from its TASKLENS_* settings (TaskLensStreamBroker, the reaper, the retries,
TaskLensMiddleware with rows in the database, live events and heartbeats), plus a no-op task.
"""

from tasklens.process import worker_broker
from tasklens.settings import get_settings

broker = worker_broker(get_settings())


@broker.task(task_name="bench.noop")
async def noop() -> None:
    """The unit of work: nothing, so only the queue and the monitoring cost anything."""
