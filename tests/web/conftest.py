"""One console server for the browser tests of this folder: starting it (migrations, Ray, the
demo camera, the detector) is most of their cost, and each test drives its own browser page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_server import running_server


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("console")) as base:
        yield base
