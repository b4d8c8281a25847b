"""The cameras and outbound policies: schemes, file folders, networks (pure checks, config
validation, and host names resolved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.core.config import load_settings
from smartcity.core.errors import ConfigError
from smartcity.core.netpolicy import CamerasPolicy, NetworkPolicy, check_camera_url, check_resolved
from smartcity.settings_check import check_settings

DATA = Path("/srv/smartcity/data")


@pytest.mark.parametrize(
    ("url", "refused_because"),
    [
        ("file:///etc/passwd", "outside the allowed folders"),
        ("file:///srv/smartcity/data/../../../etc/passwd", "outside the allowed folders"),
        ("file:///srv/smartcity/database/x.mp4", "outside the allowed folders"),  # a prefix is not a folder
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not allowed"),
        ("http://[::ffff:169.254.169.254]/", "169.254.169.254 is not allowed"),
        ("rtsp://u:p@[fe80::1%25eth0]:554/x", "fe80::1 is not allowed"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is not allowed"),
        ("rtsp://0.0.0.0:8554/x", "0.0.0.0 is not allowed"),
        ("rtsp://239.1.1.1/x", "239.1.1.1 is not allowed"),
    ],
)
def test_default_policy_refuses_files_outside_the_data_folder_and_special_networks(url: str, refused_because: str) -> None:
    refused = check_camera_url(url, CamerasPolicy(), DATA)
    assert refused is not None and refused_because in refused


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/smartcity/data/clips/a.mp4",
        "demo://vtest",
        "rtsp://admin:pw@10.20.0.7:554/stream1",  # the city's private networks
        "rtsp://192.168.1.64/h264",
        "rtsps://[fd12:3456::7]/x",
        "rtsp://127.0.0.1:8554/relay",  # a relay on the server itself (and the tests' loopback cameras)
        "https://cams.example.city/live/3.m3u8",  # a name: checked once resolved
        "http://8.8.4.4/mjpg",
    ],
)
def test_default_policy_allows_cameras_on_private_public_and_loopback_addresses(url: str) -> None:
    assert check_camera_url(url, CamerasPolicy(), DATA) is None


def test_policy_is_configurable() -> None:
    policy = CamerasPolicy(
        schemes=["rtsp", "rtsps"],
        file_roots=[Path("/video")],
        networks=NetworkPolicy(allow=["10.0.0.0/8"], deny=["10.66.0.0/16", "169.254.0.0/16"]),
    )
    assert "scheme 'file' is not allowed" in str(check_camera_url("file:///video/a.mp4", policy, DATA))
    assert check_camera_url("rtsp://10.1.2.3/x", policy, DATA) is None
    assert "10.66.0.9 is not allowed" in str(check_camera_url("rtsp://10.66.0.9/x", policy, DATA))
    assert "192.168.1.1 is not allowed" in str(check_camera_url("rtsp://192.168.1.1/x", policy, DATA))
    files = CamerasPolicy(file_roots=[Path("/video")])
    assert check_camera_url("file:///video/a.mp4", files, DATA) is None
    assert check_camera_url("file:///srv/smartcity/data/a.mp4", files, DATA) is not None


def test_config_names_the_refused_camera_and_the_policy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            overrides={
                "storage": {"data_dir": str(tmp_path)},
                "cameras": [
                    {"id": "ok", "url": f"file://{tmp_path}/a.mp4"},
                    {"id": "passwd", "url": "file:///etc/passwd"},
                    {"id": "imds", "url": "http://169.254.169.254/latest"},
                ],
            },
            environ={},
        )
    assert [e.split(":", 1)[0] for e in err.value.errors] == ["cameras[1].url", "cameras[2].url"]
    assert "cameras_policy.file_roots" in err.value.errors[0]
    assert "cameras_policy.networks" in err.value.errors[1]
    with pytest.raises(ConfigError) as err:
        load_settings(overrides={"cameras_policy": {"networks": {"deny": ["not-a-net"]}}}, environ={})
    assert "'not-a-net' is not an IP address or CIDR network" in err.value.errors[0]


def test_outbound_integrations_are_checked_against_their_policy() -> None:
    settings = load_settings(
        overrides={
            "alerts": {
                "webhooks": [
                    {"name": "city", "url": "https://10.1.1.1/hook", "secret": "a" * 32},
                    {"name": "imds", "url": "http://169.254.169.254/latest/user-data", "secret": "b" * 32},
                ],
                "mqtt": {"host": "fe80::1"},
            },
        },
        environ={},
    )
    with pytest.raises(ConfigError) as err:
        check_settings(settings)
    assert err.value.errors == [
        "alerts.webhooks[1].url: address 169.254.169.254 is not allowed (outbound_policy.networks)",
        "alerts.mqtt.host: address fe80::1 is not allowed (outbound_policy.networks)",
    ]
    loopback_ok = load_settings(overrides={"alerts": {"mqtt": {"host": "127.0.0.1"}}}, environ={})
    assert check_settings(loopback_ok) is loopback_ok
    no_loopback = load_settings(
        overrides={"alerts": {"mqtt": {"host": "127.0.0.1"}}, "outbound_policy": {"networks": {"deny": ["127.0.0.0/8"]}}},
        environ={},
    )
    with pytest.raises(ConfigError):
        check_settings(no_loopback)


async def test_a_host_name_is_refused_by_the_address_it_resolves_to() -> None:
    no_loopback = NetworkPolicy(deny=["127.0.0.0/8", "::1/128"])
    refused = await check_resolved("localhost", no_loopback)
    assert refused is not None and "localhost resolves to" in refused
    assert await check_resolved("localhost", NetworkPolicy()) is None
