"""smartcity.graphql."""
