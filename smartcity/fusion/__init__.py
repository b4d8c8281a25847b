"""smartcity.fusion: rule events -> incidents (dedupe, correlation, lifecycle), alert policy, evidence.

Pure code: no I/O, no asyncio. `engine` fuses events, `policy` plans alert deliveries,
`evidence` renders the evidence JPEG, `config` holds the pydantic sections.
"""
