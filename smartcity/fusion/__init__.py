"""smartcity.fusion: rule events -> incidents (dedupe, correlation, lifecycle), alert policy.

Imports only core. `engine` fuses events and `policy` plans alert deliveries (pure: no I/O,
no asyncio); evidence snapshots are `smartcity.privacy`'s; `config` holds the pydantic sections;
`store` is the storage interface (incident store, delivery outbox) that storage implements;
`service` is the asyncio shell that runs fusion on the bus behind that interface.
"""
