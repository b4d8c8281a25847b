"""smartcity.sources."""
