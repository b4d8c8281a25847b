"""smartcity.core."""
