"""Alert channels as plug-ins: a channel defined in the tests (example_channel.py) is
configured, validated and sent through the real fusion, outbox and dispatcher; the config
checks channel names and targets against the registry; traits (rate limit, quiet hours)
come from the channel classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_helpers import Harness, rule_event
from example_channel import PagerChannel, PagerConfig
from pydantic import ValidationError

from smartcity.core.clock import SystemClock
from smartcity.core.config import load_settings
from smartcity.core.errors import ConfigError
from smartcity.core.events import ConsoleAlert
from smartcity.core.incidents import DeliveryState
from smartcity.integrations.channel import (
    AlertChannel,
    ChannelConfig,
    ChannelRegistryError,
    channel_class,
    register_channel,
    unregister_channel,
)
from smartcity.integrations.config import AlertsConfig
from smartcity.settings_check import check_settings
from smartcity.storage.db import Database


class PagingGateway:
    """The pager's outside system, reached through the injected HTTP transport."""

    def __init__(self) -> None:
        self.pages: list[tuple[str, str]] = []  # (idempotency key, text)
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.pages.append((request.headers["Idempotency-Key"], request.content.decode()))
        return httpx.Response(204)


@pytest.fixture
def gateway() -> PagingGateway:
    register_channel(PagerChannel)  # registered on import already: registering again is a no-op
    return PagingGateway()


def pager_config(**over: Any) -> AlertsConfig:
    cfg: dict[str, Any] = {
        "pager": {"url": "http://127.0.0.1:9/pages", "prefix": "PAGE", "pagers": ["duty"]},
        "policies": [
            {
                "name": "all",
                "notify": [{"channel": "pager", "target": "duty"}, {"channel": "console", "target": "operators"}],
            }
        ],
        "rate_limit": {"max_messages": 1, "window_s": 3600},
        "dispatcher": {"poll_s": 0.05, "backoff_initial_s": 0.05, "backoff_max_s": 0.2, "lease_s": 5},
    }
    cfg.update(over)
    return AlertsConfig.model_validate(cfg)


async def test_a_channel_from_one_file_receives_a_real_incident_through_the_outbox(
    pg_db: Database, gateway: PagingGateway
) -> None:
    async with Harness(pg_db, pager_config(), SystemClock(), http_transport=gateway.transport) as h:
        consoles = h.bus.subscribe("test-console", [ConsoleAlert], maxsize=10)
        await h.publish(rule_event(camera="cam-1", track=1))
        rows = await h.deliveries()
        assert sorted(r.channel for r in rows) == ["console", "pager"]
        for r in rows:
            await h.wait_state(r.id, DeliveryState.DELIVERED)
        # a second incident to the same pager: the rate limit (a trait of the class) holds it back
        await h.publish(rule_event(camera="cam-2", track=2))
        second = [r for r in await h.deliveries() if r.id not in {x.id for x in rows}]
        by_channel = {r.channel: r for r in second}
        suppressed = await h.wait_state(by_channel["pager"].id, DeliveryState.SUPPRESSED)
        alert = await consoles.get()
        consoles.close()
    pager_row = next(r for r in rows if r.channel == "pager")
    assert gateway.pages == [(pager_row.idempotency_key, "PAGE duty: intrusion at cam-1 (high)")]
    assert suppressed.last_error == "rate limited"
    assert (alert.console, alert.incident_id, alert.sound) == ("operators", rows[0].incident_id, "alarm")


def test_policies_name_registered_channels_with_valid_targets(gateway: PagingGateway) -> None:
    with pytest.raises(ValidationError, match=r"unknown channel 'beeper' \(known: .*pager"):
        pager_config(policies=[{"name": "p", "notify": [{"channel": "beeper", "target": "x"}]}])
    with pytest.raises(ValidationError, match="policies\\[p\\]: unknown pager 'nobody'"):
        pager_config(policies=[{"name": "p", "notify": [{"channel": "pager", "target": "nobody"}]}])
    with pytest.raises(ValidationError, match="pager recipient but no pager section"):
        AlertsConfig.model_validate({"policies": [{"name": "p", "notify": [{"channel": "pager", "target": "duty"}]}]})
    with pytest.raises(ValidationError, match="sms recipient but no twilio section"):
        AlertsConfig.model_validate({"policies": [{"name": "p", "notify": [{"channel": "sms", "target": "+1"}]}]})
    hooks = [{"name": "city", "url": "https://127.0.0.1/h", "secret": "0123456789abcdef"}]
    with pytest.raises(ValidationError, match="unknown webhook 'ops'"):
        AlertsConfig.model_validate(
            {"webhooks": hooks, "policies": [{"name": "p", "notify": [{"channel": "webhook", "target": "ops"}]}]}
        )
    # the console is always on: no section needed
    ok = AlertsConfig.model_validate({"policies": [{"name": "p", "notify": [{"channel": "console", "target": "operators"}]}]})
    assert set(ok.active_channels()) == {"console"}


def test_channel_section_errors_keep_the_path_the_user_wrote(tmp_path: Path, gateway: PagingGateway) -> None:
    f = tmp_path / "alerts.yaml"
    f.write_text(
        "alerts:\n"
        "  twilio: {account_sid: nope, auth_token: t, from_number: '+15550000000'}\n"
        "  webhooks: [{name: ok, url: 'https://127.0.0.1/h', secret: '0123456789abcdef'}, {name: bad, url: 'ftp://x', secret: s}]\n"
        "  pager: {url: 'http://127.0.0.1:9/p', prefix: '', colour: red}\n"
        "  dispatcher: {poll_s: -1}\n"
    )
    with pytest.raises(ConfigError) as err:
        check_settings(load_settings(f, environ={}))
    paths = [e.split(":", 1)[0] for e in err.value.errors]
    assert paths == [
        "alerts.twilio.account_sid",
        "alerts.webhooks[1].url",
        "alerts.webhooks[1].secret",
        "alerts.pager.prefix",
        "alerts.pager.colour",
        "alerts.dispatcher.poll_s",  # listed with the channels' errors, not after they are fixed
    ]


def test_quiet_hours_default_to_the_channels_that_wake_people(gateway: PagingGateway) -> None:
    quiet = {"start": "22:00", "end": "07:00"}
    cfg = pager_config(policies=[{"name": "p", "notify": [{"channel": "pager", "target": "duty"}], "quiet_hours": quiet}])
    (p,) = cfg.resolved_policies()
    assert p.quiet_hours is not None and set(p.quiet_hours.channels or ()) == {"sms", "console"}
    assert cfg.policies[0].quiet_hours is not None and cfg.policies[0].quiet_hours.channels is None
    explicit = pager_config(policies=[{"name": "p", "quiet_hours": {**quiet, "channels": ["pager"]}}])
    assert explicit.resolved_policies()[0].quiet_hours.channels == ("pager",)  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="quiet_hours: unknown channel 'beeper'"):
        pager_config(policies=[{"name": "p", "quiet_hours": {**quiet, "channels": ["beeper"]}}])


def test_the_registry_refuses_a_taken_type_or_a_reserved_section() -> None:
    class Config(ChannelConfig):
        type: str = "sms"

    class Impostor(AlertChannel):
        type = "sms"
        config_model = Config

    class ShadowConfig(ChannelConfig):
        type: str = "shadow"

    class Shadow(AlertChannel):
        type = "shadow"
        section = "policies"
        config_model = ShadowConfig

    class Mislabelled(AlertChannel):
        type = "mislabelled"
        config_model = Config  # its `type` says sms

    with pytest.raises(ChannelRegistryError, match="taken"):
        register_channel(Impostor)
    with pytest.raises(ChannelRegistryError, match="defaulting to 'mislabelled'"):
        register_channel(Mislabelled)
    with pytest.raises(ChannelRegistryError, match="alerts setting"):
        register_channel(Shadow)
    assert channel_class("sms") is not Impostor and channel_class("shadow") is None
    assert channel_class("mislabelled") is None
    unregister_channel("shadow")  # forgetting an unknown type is harmless


def test_the_readme_channel_example_is_a_valid_config(tmp_path: Path, gateway: PagingGateway) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("### Adding an alert channel", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    f = tmp_path / "pager.yaml"
    f.write_text(block)
    cfg = AlertsConfig.model_validate(check_settings(load_settings(f, environ={})).alerts)
    assert isinstance(cfg.channels["pager"], PagerConfig) and cfg.channels["pager"].pagers == ("duty",)
    assert [r.channel for r in cfg.policies[0].notify] == ["pager"]
