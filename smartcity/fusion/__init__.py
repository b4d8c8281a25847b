"""smartcity.fusion: rule events -> incidents (dedupe, correlation, lifecycle), alert policy.

Pure code: no I/O, no asyncio. `engine` fuses events, `policy` plans alert deliveries,
`config` holds the pydantic sections. Evidence snapshots are `smartcity.privacy`'s.
"""
