"""The built-in alert channels, one module each; importing this package registers them.

A new channel is one more module (here or in a third-party package) that defines its config
model and an `AlertChannel` subclass decorated with `register_channel`; importing it before
the alerts configuration is validated makes it usable (see README, "Adding an alert channel").
"""

from smartcity.integrations.channels import console, mqtt, sms, webhook

__all__ = ["console", "mqtt", "sms", "webhook"]
