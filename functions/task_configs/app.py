"""/api/v1/task-configs*."""

from mailroom.api.routers import task_configs
from mailroom.entry.http import api_handler

handler = api_handler(task_configs.router)
