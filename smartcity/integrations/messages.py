"""What an alert says: the JSON document (webhook, MQTT) and the SMS text of an incident.

No personal data: kind, severity, cameras, times, counts and ids only.
"""

from __future__ import annotations

import time
from typing import Any

from smartcity.storage.outbox import DeliveryRow, IncidentRecord


def alert_document(delivery: DeliveryRow, incident: IncidentRecord, now: float) -> dict[str, Any]:
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


def sms_text(incident: IncidentRecord) -> str:
    inc = incident.incident
    when = time.strftime("%H:%M:%S", time.gmtime(inc.first_seen))
    cams = ", ".join(inc.camera_ids[:3]) + (" +" if len(inc.camera_ids) > 3 else "")
    return f"[{inc.severity.value.upper()}] {inc.kind} at {cams} since {when} UTC ({inc.count}x). Incident {inc.incident_id[:8]}"
