"""smartcity.integrations: alerting's running side (dispatcher, channel plug-ins and their
registry, the alerts configuration) and the outside systems alerts reach."""
