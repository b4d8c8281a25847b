"""smartcity.integrations."""
