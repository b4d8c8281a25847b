"""smartcity.storage."""
