"""Which Alembic branches the extensions bring: wiring between the extension registry and
storage's migrations, for the app's start-up and `smartcity migrate`."""

from __future__ import annotations

from smartcity.extensions import ExtensionPlan, registered
from smartcity.storage.db import MigrationBranch


def extension_branches(plan: ExtensionPlan) -> tuple[list[MigrationBranch], list[MigrationBranch]]:
    """The Alembic branches of the configured extensions (migrated and checked), and of every
    registered one (whose revisions a database may hold from an earlier configuration)."""
    configured = [MigrationBranch(e.name, e.spec.migrations) for e in plan.entries if e.spec.migrations is not None]
    known = [MigrationBranch(n, spec.migrations) for n, spec in registered().items() if spec.migrations is not None]
    return configured, known
