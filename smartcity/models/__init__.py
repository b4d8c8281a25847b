"""smartcity.models."""
