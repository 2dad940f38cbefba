"""TaskLens's public entry point for any TaskIQ app: `from tasklens.middleware import
TaskLensMiddleware`.

A re-export of `tasklens.tracking.middleware.TaskLensMiddleware`: the library lives in
`tasklens.tracking`, which imports nothing of the server (README, "Layout").
"""

from tasklens.tracking.middleware import TaskLensMiddleware

__all__ = ["TaskLensMiddleware"]
