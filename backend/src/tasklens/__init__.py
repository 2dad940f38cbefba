"""TaskLens: TaskIQ tasks, logged and watched live."""
