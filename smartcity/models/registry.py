"""The detector registry: config `type` -> factory, and `create_detector`.

Every built-in type is registered even when its optional dependency is missing: creating
such a detector raises MissingDependency naming the package, and the other types still work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from smartcity.models.base import Detector, DetectorError
from smartcity.models.config import DetectorConfig, DetectorConfigBase, parse_detector_config
from smartcity.models.darknet_detector import DarknetDetector
from smartcity.models.onnx_backend import OnnxDetector
from smartcity.models.torchscript_backend import TorchScriptDetector

DetectorFactory = Callable[[Any], Detector]
DETECTORS: dict[str, DetectorFactory] = {}

F = TypeVar("F", bound=DetectorFactory)


def register_detector(type_name: str) -> Callable[[F], F]:
    """Register a factory (usually a class) that builds a Detector from the config of `type_name`."""

    def deco(factory: F) -> F:
        if type_name in DETECTORS and DETECTORS[type_name] is not factory:
            raise DetectorError(f"detector type {type_name!r} is already registered")
        DETECTORS[type_name] = factory
        return factory

    return deco


register_detector("darknet")(DarknetDetector)
register_detector("onnx")(OnnxDetector)
register_detector("torchscript")(TorchScriptDetector)


def create_detector(config: DetectorConfig | Mapping[str, Any]) -> Detector:
    """Build the detector a config (or a raw mapping, validated here) describes."""
    if isinstance(config, Mapping):
        config = parse_detector_config(config)
    elif not isinstance(config, DetectorConfigBase):
        raise DetectorError(f"expected a detector config, got {type(config).__name__}")
    factory = DETECTORS.get(config.type)
    if factory is None:
        raise DetectorError(f"no detector registered for type {config.type!r} (known: {sorted(DETECTORS)})")
    return factory(config)
