"""The model registry: config `type` -> the roles it can play, its config model and its factory;
parsing `analysis.models` into a typed ModelSet; creating the model of an entry.

Importing this module loads no torch: built-in backends are named `module:attribute` and
imported when a model is created, so checking a configuration stays cheap. Every built-in
type is registered even when its optional dependency is missing: creating such a model raises
MissingDependency naming the package, and the other types still work.

Adding a model type is one module that calls `register_model` at import. A type the registry
does not know yet is looked for in `smartcity.models.<type>` (so `type: pose_hrnet` needs
`smartcity/models/pose_hrnet.py` and nothing else); a module elsewhere registers by being
imported before the configuration is read.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from smartcity.core.errors import ConfigError
from smartcity.models.config import (
    DarknetDetectorConfig,
    NanoDetDetectorConfig,
    OnnxDetectorConfig,
    TorchScriptDetectorConfig,
    validation_error_lines,
)
from smartcity.models.roles import SECOND_STAGE_ROLES, Classifier, Detector, ModelError, ModelRole, PoseModel

ModelFactory = Callable[..., object]
"""Builds a model from its validated config (usually the model class itself)."""

F = TypeVar("F", bound=ModelFactory)

MAX_MODELS = 16
# `type` names double as module names for the lookup in smartcity.models
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# The detection classes a second-stage model looks at when its entry gives no `apply_to`.
DEFAULT_APPLY_TO: dict[ModelRole, tuple[str, ...]] = {ModelRole.POSE: ("person",)}


@dataclass(frozen=True, slots=True)
class ModelType:
    """One registered backend: what it can do and how it is configured and built."""

    name: str
    roles: frozenset[ModelRole]
    config: type[BaseModel]  # pydantic model of its fields (with `type: Literal[name]`)
    factory: ModelFactory | str  # or "module:attribute", imported when first built

    def load(self) -> ModelFactory:
        """The factory itself (imports a built-in backend's module on first use)."""
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attr = self.factory.partition(":")
        factory: ModelFactory = getattr(importlib.import_module(module), attr)
        return factory


MODELS: dict[str, ModelType] = {}


def register_model(name: str, *, roles: Iterable[ModelRole | str], config: type[BaseModel]) -> Callable[[F], F]:
    """Register a factory (usually a class) that builds a model of type `name` from a `config`
    instance; `roles` are those the model can play."""
    if not _TYPE_NAME.match(name):
        raise ModelError(f"model type {name!r}: use lower-case letters, digits and _ (a module name)")
    role_set = frozenset(ModelRole(r) for r in roles)
    if not role_set:
        raise ModelError(f"model type {name!r} plays no role")

    def deco(factory: F) -> F:
        _add(ModelType(name, role_set, config, factory))
        return factory

    return deco


def _add(entry: ModelType) -> None:
    old = MODELS.get(entry.name)
    if old is not None and old != entry:
        raise ModelError(f"model type {entry.name!r} is already registered")
    MODELS[entry.name] = entry


_DETECT = frozenset({ModelRole.DETECT})
_add(ModelType("darknet", _DETECT, DarknetDetectorConfig, "smartcity.models.darknet_detector:DarknetDetector"))
_add(ModelType("onnx", _DETECT, OnnxDetectorConfig, "smartcity.models.onnx_backend:OnnxDetector"))
_add(ModelType("nanodet", _DETECT, NanoDetDetectorConfig, "smartcity.models.nanodet:NanoDetDetector"))
_add(ModelType("torchscript", _DETECT, TorchScriptDetectorConfig, "smartcity.models.torchscript_backend:TorchScriptDetector"))


ENTRY_POINTS = "smartcity.models"


def model_type(name: str) -> ModelType:
    """The registered type `name`, importing `smartcity.models.<name>`, or the module another
    distribution declares for it under the `smartcity.models` entry-point group, if it is not
    known yet (models load lazily: a server that does not use a backend never imports it)."""
    found = MODELS.get(name)
    if found is None and _TYPE_NAME.match(name):
        try:
            importlib.import_module(f"smartcity.models.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"smartcity.models.{name}":
                raise  # the module exists but needs something missing: say what
        for ep in entry_points(group=ENTRY_POINTS, name=name) if name not in MODELS else ():
            ep.load()
        found = MODELS.get(name)
    if found is None:
        raise ModelError(f"unknown model type {name!r} (known: {', '.join(sorted(MODELS))})")
    return found


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One item of `analysis.models`: the role a model plays and its backend's config."""

    role: ModelRole
    type_name: str
    config: BaseModel  # the validated config of the type's config model
    apply_to: frozenset[str] = frozenset()  # second stage: the detection classes it looks at


@dataclass(frozen=True, slots=True)
class ModelSet:
    """Every configured model: exactly one detector, at most one model per second-stage role."""

    entries: tuple[ModelEntry, ...]

    @property
    def detect(self) -> ModelEntry:
        return next(e for e in self.entries if e.role is ModelRole.DETECT)

    def get(self, role: ModelRole) -> ModelEntry | None:
        return next((e for e in self.entries if e.role is role), None)

    @property
    def second_stage_roles(self) -> frozenset[ModelRole]:
        return frozenset(e.role for e in self.entries if e.role in SECOND_STAGE_ROLES)


def parse_model_entry(data: Mapping[str, Any], *, path: str = "model") -> ModelEntry:
    """Validate one `{role, type, apply_to?, ...backend fields}` mapping; ConfigError lists `path.field: msg`."""
    fields = dict(data)
    role_name = fields.pop("role", None)
    apply_to = fields.pop("apply_to", None)
    try:
        role = ModelRole(role_name)
    except ValueError:
        raise ConfigError([f"{path}.role: expected one of {[r.value for r in ModelRole]}, got {role_name!r}"]) from None
    type_name = fields.get("type")
    if not isinstance(type_name, str):
        raise ConfigError([f"{path}.type: field required (a model type: {', '.join(sorted(MODELS))})"])
    try:
        kind = model_type(type_name)
    except ModelError as exc:
        raise ConfigError([f"{path}.type: {exc}"]) from None
    if role not in kind.roles:
        raise ConfigError([f"{path}.role: model type {type_name!r} cannot play {role.value!r} (only {sorted(r.value for r in kind.roles)})"])
    try:
        config = kind.config.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(validation_error_lines(path, exc)) from None
    return ModelEntry(role, type_name, config, _apply_to(role, apply_to, path))


def _apply_to(role: ModelRole, value: object, path: str) -> frozenset[str]:
    if role is ModelRole.DETECT:
        if value is not None:
            raise ConfigError([f"{path}.apply_to: a detector looks at whole frames (apply_to is for pose and classify)"])
        return frozenset()
    if value is None:
        default = DEFAULT_APPLY_TO.get(role)
        if default is None:
            raise ConfigError([f"{path}.apply_to: field required (the detection classes the {role.value} model looks at)"])
        return frozenset(default)
    if not (
        isinstance(value, list)
        and 0 < len(value) <= 1000
        and all(isinstance(c, str) and 0 < len(c) <= 100 for c in value)
    ):
        raise ConfigError([f"{path}.apply_to: expected a non-empty list of class names"])
    return frozenset(str(c) for c in value)


def parse_models(items: Sequence[Mapping[str, Any]], *, path: str = "analysis.models") -> ModelSet:
    """Validate the whole model list: every entry, exactly one detect model, one model per role."""
    errors: list[str] = []
    if not 0 < len(items) <= MAX_MODELS:
        raise ConfigError([f"{path}: give 1 to {MAX_MODELS} models (exactly one with role detect)"])
    entries: list[ModelEntry] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            errors.append(f"{path}[{i}]: expected a mapping with role and type")
            continue
        try:
            entries.append(parse_model_entry(item, path=f"{path}[{i}]"))
        except ConfigError as exc:
            errors.extend(exc.errors)
    if not errors:
        roles = [e.role for e in entries]
        if roles.count(ModelRole.DETECT) != 1:
            errors.append(f"{path}: exactly one model with role detect, got {roles.count(ModelRole.DETECT)}")
        for role in sorted(SECOND_STAGE_ROLES):
            if roles.count(role) > 1:
                errors.append(f"{path}: at most one model with role {role.value}, got {roles.count(role)}")
    if errors:
        raise ConfigError(errors)
    return ModelSet(tuple(entries))


def create_model(entry: ModelEntry) -> object:
    """Build the model of an entry and check that it implements its role's protocol."""
    model = MODELS[entry.type_name].load()(entry.config)
    protocol = {ModelRole.DETECT: Detector, ModelRole.POSE: PoseModel, ModelRole.CLASSIFY: Classifier}[entry.role]
    if not isinstance(model, protocol):
        raise ModelError(f"model type {entry.type_name!r} does not implement {protocol.__name__} (role {entry.role.value})")
    return model


def create_detector(config: ModelEntry | BaseModel | Mapping[str, Any]) -> Detector:
    """Build the detector an entry, a config or a raw mapping with its `type` (validated here) describes."""
    if isinstance(config, ModelEntry):
        if config.role is not ModelRole.DETECT:
            raise ModelError(f"model type {config.type_name!r} is configured as {config.role.value}, not detect")
        entry = config
    elif isinstance(config, Mapping):
        entry = parse_model_entry({**config, "role": ModelRole.DETECT.value}, path="detector")
    elif isinstance(config, BaseModel):
        kind = next((m for m in MODELS.values() if type(config) is m.config and ModelRole.DETECT in m.roles), None)
        if kind is None:
            raise ModelError(f"no detector registered for config {type(config).__name__}")
        entry = ModelEntry(ModelRole.DETECT, kind.name, config)
    else:
        raise ModelError(f"expected a detector config, got {type(config).__name__}")
    model = create_model(entry)
    assert isinstance(model, Detector)
    return model


def create_pose_model(entry: ModelEntry) -> PoseModel:
    model = create_model(entry)
    assert isinstance(model, PoseModel)
    return model


def create_classifier(entry: ModelEntry) -> Classifier:
    model = create_model(entry)
    assert isinstance(model, Classifier)
    return model
