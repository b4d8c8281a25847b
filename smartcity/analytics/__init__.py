"""smartcity.analytics."""
