"""A Subscription as this server reads it: the R4 Subscription with the Subscriptions R5 Backport
extensions (backport IG, StructureDefinition backport-subscription, "R4 Subscriptions"):

- Subscription.criteria: the topic's canonical URL (topics.py; 400 for any other);
- Subscription._criteria.extension backport-filter-criteria (0..*): `Type?name=value&...` on the topic's
  focus type, only with the topic's allowed parameters; several are ANDed;
- channel.type: rest-hook only (websocket is optional in the IG and not offered; email and sms are out
  of scope: docs/subscriptions.md says why);
- channel.endpoint: an https URL (plain http only to a loopback host when
  subscription_allow_http_loopback is on), checked by endpoint_guard.check_syntax;
- channel.payload: the MIME type, application/fhir+json (default), with _payload.extension
  backport-payload-content empty | id-only (default) | full-resource;
- channel.header: "Name: value" strings, each sent as an HTTP header;
- channel.extension backport-heartbeat-period, backport-timeout, backport-max-count.

prepare() runs on every create, update and patch of a Subscription (interactions/common.prepare): it
checks all of that (400 naming the problem) and replaces a client-set status: `requested` (the server
sets `active` after a successful handshake and `error` after failed deliveries), or `off` if asked.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from ..errors import BadRequest
from ..interactions.instants import now_instant, parse_instant
from ..search.parse import parse_search
from . import endpoint_guard, topics

TYPE = "Subscription"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
PROFILE = BACKPORT + "backport-subscription"
FILTER = BACKPORT + "backport-filter-criteria"
CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
CONTENTS = ("empty", "id-only", "full-resource")
MIME_TYPES = ("application/fhir+json", "application/json")
# a delivery (one notification, cut at its timeout) ends well inside the worker's lease on the
# subscription (bulk/jobs.LEASE_S, 30 s), so no second worker can take it over and send it again
MAX_TIMEOUT_S, MAX_EVENTS_PER_NOTIFICATION, MAX_HEADERS = 20, 100, 20
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n\x00]*)$")
# headers the server sets itself (or that would change how the request is framed)
_RESERVED = frozenset({"host", "content-type", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Spec:
    topic: topics.Topic
    filters: tuple                    # parsed query nodes on the focus type (ANDed)
    endpoint: str
    content: str                      # empty | id-only | full-resource
    headers: tuple[tuple[str, str], ...]
    heartbeat_s: int                  # 0: none
    timeout_s: int
    max_count: int
    status: str


def on_prepare(settings, rtype: str, resource: dict) -> None:
    """interactions/common.prepare: every Subscription a client writes is checked here."""
    if rtype == TYPE:
        prepare(resource, settings.subscription_allow_http_loopback == "on")


def prepare(resource: dict, allow_http_loopback: bool) -> None:
    """Check a Subscription a client writes, stamp the defaults, and set the server-owned status."""
    status = "off" if resource.get("status") == "off" else "requested"
    resource["status"] = status
    resource.pop("error", None)
    channel = resource.get("channel") or {}
    payload = channel.get("_payload") or {}
    if not any(e.get("url") == CONTENT for e in payload.get("extension") or []):
        channel["_payload"] = {**payload, "extension": [*(payload.get("extension") or []),
                                                        {"url": CONTENT, "valueCode": "id-only"}]}
    channel.setdefault("payload", "application/fhir+json")
    meta = resource.setdefault("meta", {})
    if PROFILE not in (meta.get("profile") or []):
        meta["profile"] = [*(meta.get("profile") or []), PROFILE]
    spec = parse(resource)
    endpoint_guard.check_syntax(spec.endpoint, allow_http_loopback)


def ended(resource: dict, now: str | None = None) -> bool:
    """Subscription.end (an instant) has passed: no more events, no more notifications."""
    end = resource.get("end")
    if not isinstance(end, str):
        return False
    try:
        end = parse_instant(end, "Subscription.end")
    except BadRequest:
        return False        # structurally invalid content never reaches the store
    return end <= (now or now_instant())


def parse(resource: dict) -> Spec:
    """The Subscription's settings; BadRequest naming what is wrong."""
    topic = topics.BY_URL.get(resource.get("criteria") or "")
    if topic is None:
        known = ", ".join(t.url for t in topics.TOPICS)
        raise BadRequest(f"Unknown subscription topic {resource.get('criteria')!r}: Subscription.criteria must be "
                         f"one of this server's topic canonicals ({known})")
    filters = tuple(_filter(topic, e.get("valueString")) for e in
                    ((resource.get("_criteria") or {}).get("extension") or []) if e.get("url") == FILTER)
    channel = resource.get("channel") or {}
    kind = channel.get("type")
    if kind != "rest-hook":
        why = ("email and sms are out of scope (docs/subscriptions.md)" if kind in ("email", "sms") else
               "websocket and message are not offered")
        raise BadRequest(f"Subscription.channel.type {kind!r} is not supported: only rest-hook ({why})")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise BadRequest("Subscription.channel.endpoint is required for a rest-hook channel")
    mime = (channel.get("payload") or "application/fhir+json").split(";")[0].strip()
    if mime not in MIME_TYPES:
        raise BadRequest(f"Subscription.channel.payload {mime!r} is not supported: use application/fhir+json")
    content = _extension(channel.get("_payload") or {}, CONTENT, "valueCode") or "id-only"
    if content not in CONTENTS:
        raise BadRequest(f"backport-payload-content {content!r} must be one of {', '.join(CONTENTS)}")
    return Spec(topic, filters, endpoint, content, _headers(channel.get("header") or []),
                _number(channel, HEARTBEAT, "valueUnsignedInt", 0, 24 * 3600, 0),
                _number(channel, TIMEOUT, "valueUnsignedInt", 1, MAX_TIMEOUT_S, 10),
                _number(channel, MAX_COUNT, "valuePositiveInt", 1, MAX_EVENTS_PER_NOTIFICATION, 10),
                resource.get("status") or "requested")


def _filter(topic: topics.Topic, criteria):
    """One backport-filter-criteria: `Type?name=value&...` on the topic's focus type."""
    if not isinstance(criteria, str) or "?" not in criteria:
        raise BadRequest(f"Filter criteria {criteria!r} must read '{topic.resource}?name=value'")
    rtype, _, query = criteria.partition("?")
    if rtype != topic.resource:
        raise BadRequest(f"Filter criteria {criteria!r} must be on {topic.resource}, the focus of topic {topic.url}")
    pairs = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        name, value = unquote_plus(name), unquote_plus(value)
        if not eq or not value or name.split(":")[0] not in topic.filters or "." in name:
            raise BadRequest(f"Filter criteria {criteria!r}: '{name}' is not a filter of topic {topic.url} "
                             f"(allowed: {', '.join(topic.filters)}, each with a value)")
        pairs.append((name, value))
    return parse_search(rtype, pairs).query


def _extension(element: dict, url: str, key: str):
    for e in element.get("extension") or []:
        if e.get("url") == url:
            return e.get(key)
    return None


def _number(channel: dict, url: str, key: str, low: int, high: int, default: int) -> int:
    value = _extension(channel, url, key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{url.rsplit('/', 1)[1]} must be an integer from {low} to {high}, not {value!r}")
    return value


def _headers(given: list) -> tuple[tuple[str, str], ...]:
    if len(given) > MAX_HEADERS:
        raise BadRequest(f"Subscription.channel.header has {len(given)} values; at most {MAX_HEADERS}")
    out = []
    for h in given:
        m = _HEADER.match(h) if isinstance(h, str) else None
        if m is None or m.group(1).lower() in _RESERVED:
            raise BadRequest(f"Subscription.channel.header {h!r} must read 'Name: value' (one line; not "
                             f"{', '.join(sorted(_RESERVED))})")
        out.append((m.group(1), m.group(2).strip()))
    return tuple(out)
