"""EventBridge's default bus, for events AWS services publish (SES sending events): every enabled
``EventBridgeRule`` event source of the template whose pattern matches the event invokes its
function asynchronously, as EventBridge's Lambda target does.

Patterns are matched by ``local.streams.matches`` (the same pattern language as Lambda's event
filtering: nested objects, value lists, prefix/suffix/exists/anything-but/numeric). Not emulated:
other buses, input transformers, retry policies and dead-letter queues of targets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from local.streams import matches

if TYPE_CHECKING:
    import concurrent.futures

    from local.stack import EventRuleSpec

log = logging.getLogger(__name__)


class Submitter(Protocol):
    def submit(self, ref: str, event: Any) -> concurrent.futures.Future[Any]: ...


class EventBus:
    def __init__(self, rules: Sequence[EventRuleSpec], runtime: Submitter) -> None:
        self._rules = [r for r in rules if r.enabled and r.bus == "default"]
        self._runtime = runtime

    def targets(self, event: dict[str, Any]) -> list[str]:
        """The functions (logical ids) whose rules match ``event``."""
        return [rule.function for rule in self._rules if matches(rule.pattern, event)]

    def publish(self, event: dict[str, Any]) -> list[str]:
        """Invoke every matching rule's function (without waiting); the functions invoked."""
        invoked = self.targets(event)
        if not invoked:
            log.info("EventBridge: no rule matches %s from %s", event.get("detail-type"), event.get("source"))
        for function in invoked:
            try:
                self._runtime.submit(function, event)
            except Exception:
                log.exception("EventBridge: could not invoke %s", function)
        return invoked
