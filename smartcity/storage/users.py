"""User accounts: creation with a hashed password, roles and camera-group scopes, audited."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from smartcity.core.config import Settings
from smartcity.core.errors import ValidationFailed
from smartcity.core.passwords import (
    WeakPassword,
    check_strength,
    hash_password_off_loop,
    verify_password_off_loop,
)
from smartcity.storage.db import Database, check_migrations
from smartcity.storage.tables import audit_log, camera_groups, user_groups, users

ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    role: str
    groups: tuple[str, ...]
    disabled: bool


async def create_user(
    db: Database, username: str, password: str, role: str, groups: Sequence[str] = (), *, actor: str
) -> UserRow:
    """Create a user; raises ValidationFailed naming the field on bad input."""
    if role not in ROLES:
        raise ValidationFailed(f"role: must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValidationFailed("username: 1-64 letters, digits, '.', '-' or '_'")
    try:
        check_strength(password)
    except WeakPassword as exc:
        raise ValidationFailed(str(exc)) from None
    password_hash = await hash_password_off_loop(password)  # before the transaction: no connection held
    now = time.time()
    async with db.engine.begin() as conn:
        if await conn.scalar(sa.select(users.c.id).where(users.c.username == username)) is not None:
            raise ValidationFailed(f"username: {username!r} already exists")
        known = set((await conn.execute(sa.select(camera_groups.c.name))).scalars())
        unknown = [g for g in groups if g not in known]
        if unknown:
            raise ValidationFailed(f"groups: unknown camera group(s) {unknown}")
        uid = (
            await conn.execute(
                sa.insert(users)
                .values(username=username, password_hash=password_hash, role=role, created_at=now)
                .returning(users.c.id)
            )
        ).scalar_one()
        if groups:
            await conn.execute(sa.insert(user_groups), [{"user_id": uid, "group_name": g} for g in groups])
        await conn.execute(
            sa.insert(audit_log).values(
                at=now,
                actor=actor,
                action="user.create",
                target=f"user:{username}",
                before=None,
                after={"username": username, "role": role, "groups": list(groups)},
            )
        )
    return UserRow(int(uid), username, role, tuple(groups), False)


async def create_user_cli(settings: Settings, username: str, password: str, role: str, groups: Sequence[str]) -> int:
    db = Database(settings.database.url)
    try:
        await check_migrations(db)
        user = await create_user(db, username, password, role, groups, actor="cli")
    except ValidationFailed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    scope = ", ".join(user.groups) if user.groups else "all camera groups"
    print(f"created {user.role} {user.username!r} (id {user.id}) with access to {scope}")
    return 0


async def authenticate(db: Database, username: str, password: str) -> UserRow | None:
    """The user when the password matches and the account is enabled; None otherwise. The
    password is checked off the event loop, at the same cost whether or not the user exists."""
    async with db.engine.connect() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.username == username))).first()
        groups = () if row is None else (
            await conn.execute(sa.select(user_groups.c.group_name).where(user_groups.c.user_id == row.id))
        ).scalars()
        group_list = tuple(sorted(groups))
    encoded = await _timing_equaliser() if row is None else row.password_hash
    matches = await verify_password_off_loop(password, encoded)
    if row is None or row.disabled or not matches:
        return None
    return UserRow(int(row.id), row.username, row.role, group_list, bool(row.disabled))


async def list_users(db: Database) -> list[UserRow]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.select(users).order_by(users.c.username))).all()
        links = (await conn.execute(sa.select(user_groups))).all()
    by_user: dict[int, list[str]] = {}
    for link in links:
        by_user.setdefault(int(link.user_id), []).append(link.group_name)
    return [
        UserRow(int(r.id), r.username, r.role, tuple(sorted(by_user.get(int(r.id), []))), bool(r.disabled)) for r in rows
    ]


_dummy_hash: str | None = None


async def _timing_equaliser() -> str:
    """A hash to check unknown users' passwords against (same cost as a real one), made once and
    off the loop: made at import time, it cost the first login of every start ~100 ms of the loop
    (the resolvers import this module inside the request)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password_off_loop("timing-equaliser-not-a-password")
    return _dummy_hash


async def update_user(
    db: Database,
    username: str,
    *,
    actor: str,
    role: str | None = None,
    groups: Sequence[str] | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> UserRow:
    """Change a user's role, scope, state or password; audited (never the password itself)."""
    if role is not None and role not in ROLES:
        raise ValidationFailed(f"role: must be one of {', '.join(ROLES)}")
    if password is not None:
        try:
            check_strength(password)
        except WeakPassword as exc:
            raise ValidationFailed(str(exc)) from None
    password_hash = None if password is None else await hash_password_off_loop(password)
    async with db.engine.begin() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.username == username))).first()
        if row is None:
            raise ValidationFailed(f"username: {username!r} does not exist")
        old_groups = sorted((await conn.execute(sa.select(user_groups.c.group_name).where(user_groups.c.user_id == row.id))).scalars())
        # every change voids the user's tokens (checked per request against this column, so it
        # holds across restarts and server processes); the user logs in again
        values: dict[str, object] = {"tokens_valid_after": time.time()}
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        if password_hash is not None:
            values["password_hash"] = password_hash
        await conn.execute(sa.update(users).where(users.c.id == row.id).values(**values))
        new_groups = old_groups
        if groups is not None:
            known = set((await conn.execute(sa.select(camera_groups.c.name))).scalars())
            unknown = [g for g in groups if g not in known]
            if unknown:
                raise ValidationFailed(f"groups: unknown camera group(s) {unknown}")
            await conn.execute(sa.delete(user_groups).where(user_groups.c.user_id == row.id))
            if groups:
                await conn.execute(sa.insert(user_groups), [{"user_id": row.id, "group_name": g} for g in groups])
            new_groups = sorted(groups)
        before = {"role": row.role, "groups": old_groups, "disabled": bool(row.disabled)}
        after = {
            "role": role or row.role,
            "groups": new_groups,
            "disabled": bool(row.disabled if disabled is None else disabled),
            **({"password": "changed"} if password is not None else {}),
        }
        await conn.execute(
            sa.insert(audit_log).values(
                at=time.time(), actor=actor, action="user.update", target=f"user:{username}", before=before, after=after
            )
        )
    return UserRow(int(row.id), username, str(after["role"]), tuple(new_groups), bool(after["disabled"]))
