"""A task config's schedule firing, or action/execute → one run of the task (docs/automation-tasks.md)."""

from mailroom.entry.task_runner import handler

__all__ = ["handler"]
