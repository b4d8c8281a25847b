"""What a user scoped to some camera groups sees of an incident, and whether they may move it.

Fusion correlates events across cameras of a site, so one incident can span cameras of two
groups (police and technical, say). For a scoped user (not admin, with camera groups):

- The incident exists when any of its cameras is in scope (as before), but they see only its
  cameras in scope, the events of those cameras, a count of those events and its rule only
  when that rule's camera is in scope. Event ids whose camera is not known yet are left out.
  The incidents query, `incident(id:)`, the incidents subscription and the console alerts all
  go through `scoped_incidents` / `scoped_alert`.
- They may acknowledge, resolve or dismiss it only when all its cameras are in scope
  (`may_move`); otherwise the answer is NotAuthorized "not in your scope". Moving an incident
  stops its escalation and alerts for every camera in it: an operator who sees part of it
  must not silence the other group's alert; someone who sees all of it decides (an admin, or
  an operator of every group involved).

Admins and users without camera groups see incidents whole.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from smartcity.core.events import Incident
from smartcity.core.incidents import IncidentRecord
from smartcity.graphql.auth import Principal
from smartcity.graphql.types import ConsoleAlertType, IncidentType
from smartcity.storage.db import Database
from smartcity.storage.incidents_repo import IncidentRepo


def unscoped(p: Principal) -> bool:
    return p.is_admin or p.groups is None


def may_move(p: Principal, camera_ids: Sequence[str], cams: Collection[str]) -> bool:
    """Whether `p` (seeing `cams`) may acknowledge, resolve or dismiss an incident of `camera_ids`."""
    return unscoped(p) or all(c in cams for c in camera_ids)


async def scoped_incidents(
    db: Database, p: Principal, recs: Sequence[IncidentRecord | Incident], cams: Collection[str]
) -> list[IncidentType | None]:
    """Each record (IncidentRecord or Incident event) as `p` may see it, or None when none of
    its cameras is in `cams`. One query for all the partial ones."""
    out: list[IncidentType | None] = []
    partial: list[tuple[IncidentType, Incident]] = []
    for rec in recs:
        inc = rec.incident if isinstance(rec, IncidentRecord) else rec
        if not any(c in cams for c in inc.camera_ids):
            out.append(None)
            continue
        shown = IncidentType.from_record(rec)
        out.append(shown)
        if not unscoped(p) and not all(c in cams for c in inc.camera_ids):
            partial.append((shown, inc))
    if partial:
        by_event, by_rule = await IncidentRepo(db).owners(
            [e for _, inc in partial for e in inc.event_ids], [inc.rule_id for _, inc in partial if inc.rule_id]
        )
        for shown, inc in partial:
            shown.camera_ids = [c for c in inc.camera_ids if c in cams]
            shown.event_ids = [e for e in inc.event_ids if by_event.get(e) in cams]
            shown.count = len(shown.event_ids)
            if inc.rule_id is not None and by_rule.get(inc.rule_id) not in cams:
                shown.rule_id = None
    return out


def scoped_alert(alert: ConsoleAlertType, p: Principal, cams: Collection[str]) -> ConsoleAlertType:
    """A console alert shows only the cameras in scope (it is only sent when one of them is)."""
    if not unscoped(p):
        alert.camera_ids = [c for c in alert.camera_ids if c in cams]
    return alert
