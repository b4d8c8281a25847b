"""What an alert says in JSON: the document webhook and MQTT channels send (a channel with its
own wording, like SMS, formats it in its own module).

No personal data: kind, severity, cameras, times, counts and ids only.
"""

from __future__ import annotations

from typing import Any

from smartcity.core.incidents import DeliveryRecord, IncidentRecord


def alert_document(delivery: DeliveryRecord, incident: IncidentRecord, now: float) -> dict[str, Any]:
    inc = incident.incident
    return {
        "type": "incident_alert",
        "idempotency_key": delivery.idempotency_key,
        "delivery_id": delivery.id,
        "sent_at": now,
        "incident": {
            "incident_id": inc.incident_id,
            "rule_id": inc.rule_id,
            "kind": inc.kind,
            "severity": inc.severity.value,
            "state": inc.state.value,
            "camera_ids": list(inc.camera_ids),
            "first_seen": inc.first_seen,
            "last_seen": inc.last_seen,
            "count": inc.count,
        },
    }

