"""The `cap` channel: emergency dispatch of incidents as OASIS CAP 1.2 messages (section
`alerts.dispatch`): signed HTTP POST to emergency services, Twilio voice calls reading the alert
aloud (TwiML <Say> in the configured language) and SMS, the Atom feed of active alerts, the
`immediate` / `confirm_first` policy per site or camera, Update and Cancel as operators act,
and an audit entry for every dispatch.

Lifecycle of one incident: a policy names `cap` targets; the first send of each is the CAP
`Alert` (under `confirm_first` it waits, as a deferred delivery, until an operator confirms, i.e.
acknowledges, or `confirm_within_s` passes; a dismissal first withholds it). Once an Alert went
out, an operator's acknowledge sends an `Update` (certainty Observed), resolve an `Update` with
responseType AllClear, dismiss a `Cancel`: follow-up deliveries queued in the outbox for every
endpoint and SMS number that got the Alert (calls are not repeated). What went out per incident
(the Alert that follow-ups reference, the targets that may have got it, the deferred deliveries an operator
releases) is kept in the database through `ctx.dispatch_state` and cached here: after a restart,
a confirm or cancel still reaches the same targets with the same references, and a deferred
Alert still goes out when its delay ends (at once if it ended while the server was down).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from smartcity.core.bus import Overflow, Subscription
from smartcity.core.dispatch_state import DispatchRecord
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import Incident, IncidentState
from smartcity.core.evidence import CLIP_MIME
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord, NewDelivery
from smartcity.integrations.cap_config import CapConfig
from smartcity.integrations.cap_message import (
    CAP_MIME,
    CapArea,
    CapInvalid,
    CapMessage,
    CapResource,
    FeedEntry,
    MsgType,
    message_from_json,
    message_to_json,
    validated_xml,
)
from smartcity.integrations.channel import (
    AlertChannel,
    ChannelConfig,
    ChannelContext,
    DeferDelivery,
    PermanentDeliveryError,
    TransientDeliveryError,
    expect_config,
    register_channel,
)
from smartcity.integrations.channels.sms import (
    KeyedTwilioHttpClient,
    twilio_delivery_error,
    twilio_idempotency,
)
from smartcity.integrations.channels.webhook import WebhookEndpoint, post_signed

log = logging.getLogger(__name__)

FOLLOW_UP = ":capfu:"  # marks the idempotency key of an Update/Cancel delivery
EVIDENCE_PATH = "/integrations/cap/evidence/{incident_id}.jpg"
CLIP_PATH = "/integrations/cap/evidence/{incident_id}.webm"  # recorded seconds after the Alert
DOCUMENT_PATH = "/integrations/cap/alerts/{identifier}.xml"
FEED_PATH = "/integrations/cap/feed.atom"
MAX_KEPT = 2000  # CAP documents and dispatched incidents kept in memory (oldest dropped)

_SAY = {
    "en": "Emergency alert from {sender}. {event} at {place}. {status}. Incident {ref}.",
    "fr": "Alerte urgente de {sender}. {event} au {place}. {status}. Incident {ref}.",
}
_STATUS = {
    "en": ("Not yet confirmed by an operator", "Confirmed by an operator"),
    "fr": ("Pas encore confirmé par un opérateur", "Confirmé par un opérateur"),
}
_EVENT_FR = {
    "Fire": "Incendie",
    "Smoke": "Fumée",
    "Person fallen": "Chute d'une personne",
    "Person down": "Personne au sol",
}
_FOLLOW = {
    IncidentState.ACKNOWLEDGED: (MsgType.UPDATE, "Confirmed by an operator", None),
    IncidentState.RESOLVED: (MsgType.UPDATE, "Resolved by an operator", "AllClear"),
    IncidentState.DISMISSED: (MsgType.CANCEL, "Cancelled by an operator: false alarm", None),
}


@dataclass
class Dispatched:
    """What went out for one incident: its Alert, the targets it was sent to (recorded before each send), its latest message."""

    alert: CapMessage
    event_ids: tuple[str, ...]
    targets: set[str] = field(default_factory=set)
    latest: CapMessage | None = None
    followed: set[IncidentState] = field(default_factory=set)
    active: bool = True


def link_signature(secret: str, incident_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{incident_id}.{expires}".encode(), hashlib.sha256).hexdigest()


@register_channel
class CapDispatch(AlertChannel):
    """The `cap` channel (section `alerts.dispatch`). Never held back by quiet hours."""

    type = "cap"
    section = "dispatch"
    config_model = CapConfig
    cfg: CapConfig

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg = c = expect_config(cfg, CapConfig)
        self.endpoints: dict[str, WebhookEndpoint] = {e.name: e for e in c.endpoints}
        self.http = httpx.AsyncClient(
            timeout=ctx.send_timeout_s, transport=ctx.http_transport, follow_redirects=False
        )
        self.twilio_http: KeyedTwilioHttpClient | None = None
        self.twilio: Client | None = None
        if c.twilio is not None:
            self.twilio_http = KeyedTwilioHttpClient()
            self.twilio = Client(
                c.twilio.account_sid, c.twilio.auth_token.get_secret_value(), http_client=self.twilio_http
            )
            self.twilio.api.base_url = c.twilio.api_base_url
        self.documents: OrderedDict[str, bytes] = OrderedDict()
        self.dispatched: OrderedDict[str, Dispatched] = OrderedDict()
        self._waiting: dict[str, set[int]] = {}  # incident -> deferred (confirm_first) deliveries
        self._state_lock = asyncio.Lock()  # one save at a time: a record is written whole
        self._sub: Subscription[Incident] | None = None
        self.emitted = 0  # CAP documents built (all validated before they leave)
        self.calls = 0
        self.texts = 0

    @classmethod
    def target_error(cls, cfg: ChannelConfig, target: str) -> str | None:
        return expect_config(cfg, CapConfig).target_error(target)

    @classmethod
    def outbound_hosts(cls, cfg: ChannelConfig) -> list[tuple[str, str]]:
        return expect_config(cfg, CapConfig).hosts()

    async def start(self) -> None:
        if self.ctx.dispatch_state is not None:  # the feed's active alerts and recent dispatches
            for rec in reversed(await self.ctx.dispatch_state.recent(MAX_KEPT)):
                self._restore(rec)
        self._sub = self.ctx.bus.subscribe(
            "cap-dispatch", [Incident], maxsize=10_000, overflow=Overflow.BLOCK
        )
        self.ctx.supervisor.start("cap-dispatch-follow-ups", self._follow_loop, restart=True)

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close("cap channel closing")
        await self.http.aclose()
        if self.twilio_http is not None:
            await self.twilio_http.close()
            await asyncio.sleep(0)

    # ---------------------------------------------------------------- messages

    def _area(self, camera_id: str) -> CapArea:
        place = self.cfg.places.get(camera_id)
        if place is None:
            return CapArea(description=f"camera {camera_id}")
        return CapArea(f"{place.address} (camera {camera_id})", place.lat, place.lon, place.radius_m / 1000.0)

    def _evidence(self, incident_id: str, now: float) -> tuple[CapResource, ...]:
        if not self.cfg.public_url or self.cfg.feed_token is None:
            return ()
        exp = int(now + self.cfg.link_ttl_s)
        sig = link_signature(self.cfg.feed_token.get_secret_value(), incident_id, exp)
        query = f"?exp={exp}&sig={sig}"
        base = self.cfg.public_url
        return (
            CapResource(
                "Evidence picture (people pixelated)", "image/jpeg", f"{base}{EVIDENCE_PATH.format(incident_id=incident_id)}{query}"
            ),
            CapResource(
                "Evidence clip, seconds before and after (people pixelated)",
                CLIP_MIME,
                f"{base}{CLIP_PATH.format(incident_id=incident_id)}{query}",
            ),
        )

    def _message(self, rec: IncidentRecord, msg_type: MsgType, now: float, **over: Any) -> CapMessage:
        inc = rec.incident
        profile = self.cfg.kind(inc.kind)
        camera = inc.camera_ids[0] if inc.camera_ids else inc.camera_id
        confirmed = rec.acknowledged_by is not None or inc.state is not IncidentState.OPEN
        area = self._area(camera)
        fields: dict[str, Any] = {
            "identifier": f"{inc.incident_id}.{msg_type.value.lower()}",
            "sender": self.cfg.sender,
            "sent": now,
            "msg_type": msg_type,
            "status": self.cfg.status,
            "scope": self.cfg.scope,
            "restriction": self.cfg.restriction if self.cfg.scope == "Restricted" else None,
            "language": self.cfg.language,
            "category": profile.category,
            "event": profile.event,
            "urgency": profile.urgency,
            "severity": profile.severity,
            "certainty": "Observed" if confirmed else "Likely",
            "headline": f"{profile.event} at {area.description}",
            "description": f"{profile.event} seen by camera {camera} at {_hhmm(inc.first_seen)} UTC"
            f" ({inc.count} observation(s)); {'confirmed' if confirmed else 'not yet confirmed'} by an operator.",
            "instruction": profile.instruction,
            "area": area,
            "sender_name": self.cfg.sender_name,
            "incidents": inc.incident_id,
            "resources": self._evidence(inc.incident_id, now),
            "parameters": (
                ("incident_id", inc.incident_id),
                ("kind", inc.kind),
                ("cameras", " ".join(inc.camera_ids)),
            ),
            "expires": now + self.cfg.expires_min * 60.0,
            "utc_offset_min": self.cfg.utc_offset_min,
        }
        fields.update(over)
        return CapMessage(**fields)

    def _keep(self, msg: CapMessage) -> bytes:
        try:
            doc = validated_xml(msg)
        except CapInvalid as exc:
            raise PermanentDeliveryError(str(exc)) from exc
        self.emitted += 1
        self.documents[msg.identifier] = doc
        while len(self.documents) > MAX_KEPT:
            self.documents.popitem(last=False)
        return doc

    def document_url(self, identifier: str) -> str:
        return f"{self.cfg.public_url or ''}{DOCUMENT_PATH.format(identifier=identifier)}"

    def feed_entries(self) -> list[FeedEntry]:
        """The active alerts (neither resolved nor cancelled), each with its latest message."""
        out = []
        for d in self.dispatched.values():
            m = d.latest or d.alert
            if d.active:
                out.append(FeedEntry(m, self.document_url(m.identifier)))
        return out

    # ---------------------------------------------------------------- state

    def _restore(self, rec: DispatchRecord) -> None:
        try:  # what is in memory is newer than what was stored: never replaced
            if rec.alert is not None and rec.incident_id not in self.dispatched:
                d = Dispatched(message_from_json(rec.alert), rec.event_ids, set(rec.targets))
                d.latest = message_from_json(rec.latest) if rec.latest is not None else None
                d.followed = {IncidentState(s) for s in rec.followed}
                d.active = rec.active
                self._cache(rec.incident_id, d)
        except ValueError as exc:
            log.error("dispatch state of incident %s unreadable, ignored: %s", rec.incident_id, exc)
            return
        if rec.waiting:
            self._waiting.setdefault(rec.incident_id, set()).update(rec.waiting)

    def _cache(self, incident_id: str, d: Dispatched) -> None:
        self.dispatched[incident_id] = d
        while len(self.dispatched) > MAX_KEPT:
            self.dispatched.popitem(last=False)

    async def dispatch_of(self, incident_id: str) -> Dispatched | None:
        """What went out for an incident: from memory, else from the stored state (an incident
        dispatched before a restart, or dropped from memory since)."""
        if incident_id not in self.dispatched and self.ctx.dispatch_state is not None:
            rec = await self.ctx.dispatch_state.get(incident_id)
            if rec is not None:
                self._restore(rec)
        # read after the await: a delivery of the same incident may have created it meanwhile
        return self.dispatched.get(incident_id)

    async def _save(self, incident_id: str) -> None:
        """Write the incident's state through (TransientDeliveryError when it cannot: the
        delivery is tried again, and the receiver de-duplicates by its idempotency key)."""
        store = self.ctx.dispatch_state
        if store is None:
            return
        async with self._state_lock:
            d = self.dispatched.get(incident_id)
            rec = DispatchRecord(
                incident_id=incident_id,
                alert=message_to_json(d.alert) if d is not None else None,
                event_ids=d.event_ids if d is not None else (),
                targets=tuple(sorted(d.targets)) if d is not None else (),
                latest=message_to_json(d.latest) if d is not None and d.latest is not None else None,
                followed=tuple(sorted(s.value for s in d.followed)) if d is not None else (),
                active=d.active if d is not None else True,
                waiting=tuple(sorted(self._waiting.get(incident_id, ()))),
                updated_at=self.ctx.clock.time(),
            )
            try:
                await store.save(rec)
            except Exception as exc:
                raise TransientDeliveryError(f"dispatch state not stored: {type(exc).__name__}: {exc}") from exc

    async def document(self, identifier: str) -> bytes | None:
        """The CAP document `identifier` (`<incident>.<alert|state>`), from memory or rebuilt
        from the stored state (the same message, hence the same document)."""
        doc = self.documents.get(identifier)
        if doc is not None:
            return doc
        incident_id = identifier.rpartition(".")[0]
        d = await self.dispatch_of(incident_id) if incident_id else None
        for msg in (d.alert, d.latest) if d is not None else ():
            if msg is not None and msg.identifier == identifier:
                return self._keep(msg)
        return None

    # ---------------------------------------------------------------- sending

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        if FOLLOW_UP in delivery.idempotency_key:
            return await self._send_follow_up(delivery, incident)
        return await self._send_alert(delivery, incident)

    async def _send_alert(self, delivery: DeliveryRecord, rec: IncidentRecord) -> DeliveryState:
        inc = rec.incident
        now = self.ctx.clock.time()
        if inc.state in (IncidentState.RESOLVED, IncidentState.DISMISSED):
            await self._audit(
                "dispatch.withheld", inc.incident_id, delivery.target, {"state": inc.state.value}
            )
            return DeliveryState.CANCELLED
        camera = inc.camera_ids[0] if inc.camera_ids else inc.camera_id
        policy = self.cfg.policy_for(camera, self.ctx.sites.get(camera))
        if policy.mode == "confirm_first" and inc.state is IncidentState.OPEN:
            until = delivery.created_at + policy.confirm_within_s
            if now < until:
                if inc.incident_id not in self.dispatched:
                    await self.dispatch_of(inc.incident_id)  # waiting deliveries kept before a restart
                first = inc.incident_id not in self._waiting
                waiting = self._waiting.setdefault(inc.incident_id, set())
                if delivery.id not in waiting:
                    waiting.add(delivery.id)
                    await self._save(inc.incident_id)
                if first:
                    await self._audit(
                        "dispatch.awaiting_confirmation", inc.incident_id, delivery.target, {"until": until}
                    )
                raise DeferDelivery(until, f"awaiting an operator's confirmation until {_hhmm(until)} UTC")
        d = await self.dispatch_of(inc.incident_id)
        if d is None:  # the Alert is stored before it goes anywhere: every target gets the same one
            d = Dispatched(self._message(rec, MsgType.ALERT, now), inc.event_ids)
            self._cache(inc.incident_id, d)
        doc = self.documents.get(d.alert.identifier) or self._keep(d.alert)
        if delivery.target not in d.targets:
            # stored (with the Alert, for the first) before it is sent: a crash after the send must
            # not leave a target that has the Alert without its Cancel (a Cancel to one that missed
            # it is harmless)
            d.targets.add(delivery.target)
            await self._save(inc.incident_id)
        return await self._deliver(delivery, d.alert, doc, first=True)

    async def _send_follow_up(self, delivery: DeliveryRecord, rec: IncidentRecord) -> DeliveryState:
        state = IncidentState(delivery.idempotency_key.split(FOLLOW_UP, 1)[1].split(":", 1)[0])
        d = await self.dispatch_of(delivery.incident_id)
        if d is None:
            raise PermanentDeliveryError("the alert this follows is not in the dispatch state")
        msg_type, note, response = _FOLLOW[state]
        ident = f"{delivery.incident_id}.{state.value}"
        msg = d.latest if d.latest is not None and d.latest.identifier == ident else None
        if msg is None:
            msg = self._message(
                rec,
                msg_type,
                self.ctx.clock.time(),
                identifier=ident,
                note=note,
                references=(d.alert.reference(),),
                response_type=response,
                certainty="Observed" if state is not IncidentState.DISMISSED else "Unlikely",
            )
            d.latest = msg
            d.active = state is IncidentState.ACKNOWLEDGED
            await self._save(delivery.incident_id)
        doc = self.documents.get(msg.identifier) or self._keep(msg)
        return await self._deliver(delivery, msg, doc, first=False)

    async def _deliver(
        self, delivery: DeliveryRecord, msg: CapMessage, doc: bytes, *, first: bool
    ) -> DeliveryState:
        how, _, number = delivery.target.partition(":")
        if how == "voice" and number:
            await self._call(delivery, number, msg)
            result = DeliveryState.SENT
        elif how == "sms" and number:
            await self._text(delivery, number, msg)
            result = DeliveryState.SENT
        else:
            await self._post(delivery, doc)
            result = DeliveryState.DELIVERED
        action = f"dispatch.{msg.msg_type.value.lower()}"
        await self._audit(
            action, delivery.incident_id, delivery.target, {"identifier": msg.identifier, "via": how}
        )
        log.warning(
            "CAP %s %s for incident %s sent to %s",
            msg.msg_type.value,
            msg.identifier,
            delivery.incident_id,
            delivery.target,
        )
        return result

    async def _post(self, delivery: DeliveryRecord, doc: bytes) -> None:
        ep = self.endpoints.get(delivery.target)
        if ep is None:
            raise PermanentDeliveryError(f"unknown cap endpoint {delivery.target!r}")
        await post_signed(self.http, ep, doc, CAP_MIME, delivery.idempotency_key, self.ctx.clock.time())

    def spoken(self, msg: CapMessage) -> str:
        lang = self.cfg.language[:2]
        event = _EVENT_FR.get(msg.event, msg.event) if lang == "fr" else msg.event
        status = _STATUS.get(lang, _STATUS["en"])[msg.certainty == "Observed"]
        ref = " ".join(msg.incidents[:4]) if msg.incidents else "?"
        return _SAY.get(lang, _SAY["en"]).format(
            sender=self.cfg.sender_name, event=event, place=msg.area.description, status=status, ref=ref
        )

    def twiml(self, msg: CapMessage) -> str:
        assert self.cfg.twilio is not None
        r = VoiceResponse()
        r.say(
            self.spoken(msg),
            language=self.cfg.language,
            voice=self.cfg.twilio.voice,
            loop=self.cfg.twilio.repeat,
        )
        return str(r)

    async def _twilio(self, delivery: DeliveryRecord, what: str, **kw: Any) -> None:
        if self.twilio is None or self.cfg.twilio is None:
            raise PermanentDeliveryError("dispatch.twilio is not configured")
        api = self.twilio.calls if what == "call" else self.twilio.messages
        try:
            with twilio_idempotency(delivery.idempotency_key):
                await api.create_async(from_=self.cfg.twilio.from_number, **kw)
        except TwilioRestException as exc:
            raise twilio_delivery_error(exc) from exc
        except (aiohttp.ClientError, OSError, TwilioException) as exc:
            raise TransientDeliveryError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc

    async def _call(self, delivery: DeliveryRecord, number: str, msg: CapMessage) -> None:
        await self._twilio(delivery, "call", to=number, twiml=self.twiml(msg))
        self.calls += 1

    async def _text(self, delivery: DeliveryRecord, number: str, msg: CapMessage) -> None:
        word = {MsgType.ALERT: "ALERT", MsgType.UPDATE: "UPDATE", MsgType.CANCEL: "CANCELLED"}[msg.msg_type]
        body = f"[{word}] {self.spoken(msg)}"
        if msg.note:
            body += f" {msg.note}."
        await self._twilio(delivery, "sms", to=number, body=body[:1500])
        self.texts += 1

    async def _audit(self, action: str, incident_id: str, target: str, after: dict[str, Any]) -> None:
        if self.ctx.audit is None:
            return
        try:
            await self.ctx.audit.record(
                at=self.ctx.clock.time(),
                actor="dispatch",
                action=action,
                target=f"incident:{incident_id}",
                after={"to": target, **after},
            )
        except Exception as exc:  # what was sent stays sent; the log keeps the trace
            log.error(
                "dispatch of incident %s to %s not audited: %s: %s",
                incident_id,
                target,
                type(exc).__name__,
                exc,
            )

    # ---------------------------------------------------------------- operator actions

    async def _follow_loop(self) -> None:
        assert self._sub is not None
        while True:
            try:
                batch = await self._sub.get_batch(100)
            except SubscriptionClosed:
                return
            for inc in batch:
                if inc.state is not IncidentState.OPEN:
                    await self.on_operator_action(inc)

    async def on_operator_action(self, inc: Incident) -> None:
        """An incident left `open`: release its deferred alerts at once (sent if confirmed,
        withheld if dismissed) and queue the Update/Cancel of the alerts already out."""
        now = self.ctx.clock.time()
        d = await self.dispatch_of(inc.incident_id)
        waiting = self._waiting.pop(inc.incident_id, set())
        for delivery_id in waiting:
            await self.ctx.outbox.retry_at(
                delivery_id, now, f"operator moved the incident to {inc.state.value}"
            )
        queue: list[NewDelivery] = []
        follow = d is not None and inc.state not in d.followed and inc.state in _FOLLOW
        if d is not None and follow:
            d.followed.add(inc.state)
        if waiting or follow:
            try:
                await self._save(inc.incident_id)
            except TransientDeliveryError as exc:  # the follow-ups below still go out
                log.error("incident %s: %s", inc.incident_id, exc)
        if d is not None and follow:
            for target in sorted(d.targets):
                if target.startswith("voice:"):
                    continue
                key = f"{inc.incident_id}{FOLLOW_UP}{inc.state.value}:{target}"
                queue.append(NewDelivery(inc.incident_id, self.type, target, key[:200], now))
        if queue and self.ctx.incidents is not None:
            await self.ctx.incidents.commit([], queue, now)
        if waiting or queue:
            self.ctx.wake_dispatcher()


def _hhmm(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))
