"""The GraphQL executor of the API schema: strawberry's, with a subscription's events that forget
what they memoised.

graphql-core 3.3 memoises the sub-fields it collects for an object field on the identity of the
field list, in a dict on the executor that keeps each list alive (so that its id cannot be
reused), and runs each event of a subscription on a shallow copy of the subscription's executor
(`build_per_event_executor`): every copy shares that one dict. Each event collects its root
fields anew, so each adds entries under new ids, and no entry is ever dropped while the
subscription lasts: in the soak (bench/soak.py, 4 subscribers) they were 2.45 of the 2.78 MiB
the server's Python heap grew in 9 minutes (CollectedFields, FieldDetails, their lists). GraphQL.js keys
the same memo on a WeakMap, which forgets. Here each event gets a memo of its own, dropped
with the event's executor: within one event the memo works as before.
"""

from __future__ import annotations

from typing import Any

from graphql.execution.executor import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# the shared per-executor memos of graphql-core 3.3 (private names: checked by
# tests/graphql/test_subscription_memory.py, which fails if an upgrade renames them)
PER_EVENT_MEMOS = ("_relevant_sub_fields", "_stream_usages")


class ApiExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context; each subscription event memoises on its own."""

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        for name in PER_EVENT_MEMOS:
            memo = getattr(self, name, None)
            if memo is not None:
                setattr(executor, name, type(memo)())
        return executor
