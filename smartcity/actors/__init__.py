"""smartcity.actors."""
