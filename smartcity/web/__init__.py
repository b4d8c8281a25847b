"""smartcity.web."""
