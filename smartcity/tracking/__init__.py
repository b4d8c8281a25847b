"""smartcity.tracking."""
