"""smartcity.fusion."""
