"""Operator rules in the database: stored as the rule engine's spec, versioned, audited."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from smartcity.storage.db import Database
from smartcity.storage.tables import audit_log, rules


@dataclass(frozen=True, slots=True)
class RuleRow:
    id: str
    camera_id: str
    type: str
    name: str
    enabled: bool
    classes: tuple[str, ...]
    min_confidence: float
    cooldown_s: float
    schedule: dict[str, Any]
    params: dict[str, Any]
    version: int
    created_at: float
    updated_at: float
    geometry: tuple[Any, ...] = ()  # the drawable shapes of the params (zones, lines), normalised

    def spec(self) -> dict[str, Any]:
        """The rule as `smartcity.analytics.validate_rule` takes it (and the actors run it)."""
        return {
            "id": self.id,
            "camera_id": self.camera_id,
            "type": self.type,
            "name": self.name,
            "enabled": self.enabled,
            "classes": list(self.classes),
            "min_confidence": self.min_confidence,
            "cooldown_s": self.cooldown_s,
            "schedule": self.schedule,
            "params": self.params,
        }


def _row(r: Any) -> RuleRow:
    return RuleRow(
        id=r.id,
        camera_id=r.camera_id,
        type=r.type,
        name=r.name,
        enabled=bool(r.enabled),
        classes=tuple(r.classes or ()),
        min_confidence=float(r.min_confidence),
        cooldown_s=float(r.cooldown_s),
        schedule=dict(r.schedule or {}),
        params=dict(r.params or {}),
        version=int(r.version),
        created_at=float(r.created_at),
        updated_at=float(r.updated_at),
        geometry=tuple(r.geometry or ()),
    )


class RuleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_rules(self, *, camera_ids: list[str] | None = None) -> list[RuleRow]:
        q = sa.select(rules).order_by(rules.c.camera_id, rules.c.id)
        if camera_ids is not None:
            q = q.where(rules.c.camera_id.in_(camera_ids))
        async with self.db.engine.connect() as conn:
            return [_row(r) for r in await conn.execute(q)]

    async def get(self, rule_id: str) -> RuleRow | None:
        async with self.db.engine.connect() as conn:
            r = (await conn.execute(sa.select(rules).where(rules.c.id == rule_id))).first()
        return _row(r) if r else None

    async def save(self, spec: dict[str, Any], *, actor: str, shapes: list[Any]) -> tuple[RuleRow | None, RuleRow]:
        """Insert or update a validated rule spec; returns (before, after); audited in the same transaction."""
        now = time.time()
        values = {
            "camera_id": spec["camera_id"],
            "type": spec["type"],
            "name": spec.get("name", ""),
            "enabled": bool(spec.get("enabled", True)),
            "geometry": shapes,
            "classes": list(spec.get("classes", [])),
            "params": spec.get("params", {}),
            "schedule": spec.get("schedule"),
            "min_confidence": float(spec.get("min_confidence", 0.3)),
            "cooldown_s": float(spec.get("cooldown_s", 0.0)),
            "updated_at": now,
        }
        async with self.db.engine.begin() as conn:
            old = (await conn.execute(sa.select(rules).where(rules.c.id == spec["id"]).with_for_update())).first()
            before = _row(old) if old else None
            if before is None:
                await conn.execute(sa.insert(rules).values(id=spec["id"], created_at=now, version=1, **values))
            else:
                await conn.execute(
                    sa.update(rules).where(rules.c.id == spec["id"]).values(version=before.version + 1, **values)
                )
            after = _row((await conn.execute(sa.select(rules).where(rules.c.id == spec["id"]))).one())
            await conn.execute(
                sa.insert(audit_log).values(
                    at=now,
                    actor=actor,
                    action="rule.create" if before is None else "rule.update",
                    target=f"rule:{spec['id']}",
                    before=before.spec() if before else None,
                    after=after.spec(),
                )
            )
        return before, after

    async def delete(self, rule_id: str, *, actor: str) -> RuleRow | None:
        async with self.db.engine.begin() as conn:
            old = (await conn.execute(sa.select(rules).where(rules.c.id == rule_id))).first()
            if old is None:
                return None
            before = _row(old)
            await conn.execute(sa.delete(rules).where(rules.c.id == rule_id))
            await conn.execute(
                sa.insert(audit_log).values(
                    at=time.time(), actor=actor, action="rule.delete", target=f"rule:{rule_id}", before=before.spec(), after=None
                )
            )
        return before
