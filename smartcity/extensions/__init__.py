"""Server extensions: optional features that plug into the running server (one sub-package each)."""
