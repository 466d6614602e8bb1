"""The emulated service: PutEvents semantics and the ``/_emulator/`` inspection API.

Independent of the HTTP transport: :meth:`Emulator.handle` takes a parsed request and returns an
:class:`~airflow_provider_pinpoint.emulator.wire.Answer`, which may also say "close the connection
without answering" (the dropped-connection and lost-response faults). Everything runs on the
server's one event-loop thread, so no locking is needed.

Two checks keep a web page the user happens to visit from reaching the emulator: a ``Host`` that
is not a loopback name is refused (a DNS-rebinding page sends its own domain name), and
``/_emulator/`` calls that change state must be JSON (a cross-origin form or ``text/plain`` POST
cannot say so without a CORS preflight, which the emulator never grants). PutEvents needs neither
content-type check: it requires an ``Authorization`` header, which also needs a preflight.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from urllib.parse import unquote

import msgspec

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.emulator import faults as fault_kinds
from airflow_provider_pinpoint.emulator import wire
from airflow_provider_pinpoint.emulator.faults import Faults, Settings
from airflow_provider_pinpoint.emulator.store import MemoryStore
from airflow_provider_pinpoint.emulator.streams.service import Streams
from airflow_provider_pinpoint.emulator.validation import DROPPED, check_endpoint, check_endpoint_id, check_event

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_ITEM_ERROR_MESSAGES = {429: "Too many requests", 500: "Internal server error"}
_PORT = re.compile(r"(:[0-9]*)?")
_READ_METHODS = frozenset({"GET", "HEAD"})


def is_loopback_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback: localhost, 127.x.x.x or [::1], any port."""
    host = host.lower()
    if host.startswith("["):
        name, bracket, port = host[1:].partition("]")
        if not bracket:
            return False
    else:
        name, colon, port = host.partition(":")
        port = colon + port
    if _PORT.fullmatch(port) is None:
        return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` header says application/json (parameters such as charset aside)."""
    return content_type.partition(";")[0].strip().lower() == "application/json"


class Emulator:
    """One emulated Pinpoint account: its applications, what it accepted, and its faults."""

    def __init__(
        self,
        store: MemoryStore,
        settings: Settings,
        *,
        apps: Collection[str] | None = None,
        access_key: str | None = None,
        allow_remote: bool = False,
    ) -> None:
        self.store = store
        self.apps = frozenset(apps) if apps else None
        self.access_key = access_key
        # Off: only loopback names are accepted in Host. On when serving other machines, whose
        # clients name this one however they reach it.
        self.allow_remote = allow_remote
        # Kinesis and Firehose, on the same port (in memory only, whatever the store).
        self.streams = Streams()
        self._initial = settings
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        self.settings = settings
        self.faults = Faults(settings)

    def reset(self) -> None:
        """Forget records and statistics, and turn every fault off."""
        self.store.reset()
        self.streams.reset()
        self.configure(Settings(validate=self._initial.validate, seed=self._initial.seed))

    def _count_fault(self, kind: str, n: int = 1) -> None:
        faults = self.store.stats["faults"]
        faults[kind] = faults.get(kind, 0) + n

    # -- routing ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool) -> wire.Answer:
        host = headers.get("host")
        if host is not None and not self.allow_remote and not is_loopback_host(host):
            return wire.json_answer(
                421,
                {
                    "Message": f"Host {host[:100]!r} is not a loopback name: the emulator answers requests for "
                    "localhost, 127.0.0.1 and [::1] only, unless started with --allow-remote"
                },
            )
        target = headers.get("x-amz-target")
        if target is not None and path == "/":
            if method != "POST":
                return wire.error_answer(wire.METHOD_NOT_ALLOWED, f"Method {method} is not allowed here")
            problem = self._auth_problem(headers)
            return self.streams.handle(target, problem, body, too_large, self.faults, self.settings)
        parts = [unquote(part) for part in path.split("/")[1:]]
        if len(parts) == 4 and parts[0] == "v1" and parts[1] == "apps" and parts[3] == "events":
            if method != "POST":
                return wire.error_answer(wire.METHOD_NOT_ALLOWED, f"Method {method} is not allowed here")
            # A stray X-Amz-Target raised the server's body cap to the streams' one: PutEvents keeps its own.
            return self.put_events(parts[2], headers, body, too_large or len(body) > quotas.MAX_REQUEST_BYTES)
        if parts and parts[0] == "_emulator":
            if method not in _READ_METHODS and not is_json(headers.get("content-type", "")):
                return wire.json_answer(
                    415, {"Message": f"{method} /_emulator/ calls must be sent with Content-Type: application/json"}
                )
            try:
                return self.inspect(method, parts[1:], body)
            except (ValueError, TypeError, msgspec.DecodeError) as exc:
                return wire.json_answer(400, {"Message": str(exc)})
        return wire.error_answer(wire.NOT_FOUND, f"No such resource: {path}")

    # -- PutEvents ------------------------------------------------------------------------------

    def _auth_problem(self, headers: dict[str, str]) -> str | None:
        authorization = headers.get("authorization")
        if not authorization:
            return "Missing Authentication Token"
        if self.access_key is not None:
            match = _CREDENTIAL.search(authorization)
            if match is None or match.group(1) != self.access_key:
                return "The security token included in the request is invalid."
        return None

    def put_events(self, app: str, headers: dict[str, str], body: bytes, too_large: bool) -> wire.Answer:
        self.store.stats["requests"] += 1
        if self.faults.drop():
            self._count_fault(fault_kinds.DROP)
            return wire.Answer(None, close=True)
        answer = self._put_events(app, headers, body, too_large)
        if self.settings.latency_ms:
            self._count_fault(fault_kinds.LATENCY)
            answer.delay_s += self.faults.latency_s()
        return answer

    def _put_events(self, app: str, headers: dict[str, str], body: bytes, too_large: bool) -> wire.Answer:
        faults = self.faults
        problem = self._auth_problem(headers)
        if problem:
            return wire.error_answer(wire.FORBIDDEN, problem)
        if self.apps is not None and app not in self.apps:
            return wire.error_answer(wire.NOT_FOUND, f"Application {app} not found")
        if faults.throttle():
            self._count_fault(fault_kinds.RATE_LIMIT)
            return wire.error_answer(wire.TOO_MANY_REQUESTS, "Too many requests")
        if faults.error():
            self._count_fault(fault_kinds.ERROR)
            return wire.error_answer(wire.INTERNAL_SERVER_ERROR, "Internal server error")
        if too_large:
            return wire.error_answer(
                wire.PAYLOAD_TOO_LARGE, f"Request body exceeds the maximum of {quotas.MAX_REQUEST_BYTES} bytes"
            )
        try:
            batch_item = wire.decode_events_request(body)
        except wire.MalformedRequest as exc:
            return wire.error_answer(wire.BAD_REQUEST, str(exc))
        event_count = sum(len(batch.Events) for batch in batch_item.values())
        if event_count > quotas.MAX_EVENTS_PER_REQUEST:
            return wire.error_answer(
                wire.BAD_REQUEST,
                f"The request contains {event_count} events; the maximum is {quotas.MAX_EVENTS_PER_REQUEST}",
            )
        results = self._process(app, batch_item)
        if faults.lose_response():
            self._count_fault(fault_kinds.LOST_RESPONSE)
            return wire.Answer(None, close=True, delay_s=self.settings.lost_response_delay_ms / 1000.0)
        return wire.json_answer(202, {"Results": results})

    def _process(self, app: str, batch_item: dict[str, wire.EventsBatch]) -> dict:
        """Per-item answers for a request; records what is accepted."""
        validate = self.settings.validate
        catalog = self.store.catalog(app)
        store = self.store
        stats = store.stats
        item_error = self.faults.item_error if self.settings.item_error_rate else None
        accepted = wire.ACCEPTED
        results: dict[str, dict] = {}
        recorded = duplicates = endpoints = rejected = dropped = item_errors = 0
        for endpoint_id, batch in batch_item.items():
            events = batch.Events
            id_problem = check_endpoint_id(endpoint_id) if validate else None
            if id_problem:
                failed = wire.item_result(400, id_problem)
                stats["endpoints_rejected"] += 1 if batch.Endpoint else 0
                rejected += len(events)
                results[endpoint_id] = {
                    "EndpointItemResponse": failed,
                    "EventsItemResponse": dict.fromkeys(events, failed),
                }
                continue
            endpoint_result = accepted
            if batch.Endpoint:
                size = len(wire.encode(batch.Endpoint)) if validate else 0
                problem = check_endpoint(endpoint_id, batch.Endpoint, size, catalog) if validate else None
                if problem:
                    endpoint_result = wire.item_result(400, problem)
                    stats["endpoints_rejected"] += 1
                else:
                    store.record_endpoint(app, endpoint_id, batch.Endpoint)
                    endpoints += 1
            if not validate and item_error is None:
                # The fast path: everything is accepted as it is.
                keep = events
                event_results = dict.fromkeys(events, accepted)
            else:
                keep = {}
                event_results = {}
                for event_id, raw in events.items():
                    if validate:
                        problem = check_event(raw, catalog)
                        if problem is DROPPED:
                            dropped += 1
                            event_results[event_id] = accepted
                            continue
                        if problem:
                            rejected += 1
                            event_results[event_id] = wire.item_result(400, problem)
                            continue
                    code = item_error() if item_error else None
                    if code:
                        item_errors += 1
                        event_results[event_id] = wire.item_result(code, _ITEM_ERROR_MESSAGES[code])
                        continue
                    keep[event_id] = raw
                    event_results[event_id] = accepted
            if keep:
                duplicates += store.record_events(app, endpoint_id, keep)
                recorded += len(keep)
            results[endpoint_id] = {"EndpointItemResponse": endpoint_result, "EventsItemResponse": event_results}
        stats["events_accepted"] += recorded
        stats["events_duplicated"] += duplicates
        stats["endpoints_accepted"] += endpoints
        stats["events_rejected"] += rejected
        stats["events_dropped"] += dropped
        if item_errors:
            self._count_fault(fault_kinds.ITEM_ERROR, item_errors)
        store.save(app)
        return results

    # -- inspection ---------------------------------------------------------------------------

    def inspect(self, method: str, parts: list[str], body: bytes) -> wire.Answer:
        """``/_emulator/...``: statistics, records, settings, reset."""
        route = (method, *parts)
        if route == ("GET", "stats"):
            return wire.json_answer(200, self.store.stats)
        if route == ("GET", "config"):
            return wire.json_answer(200, self._config())
        if route == ("POST", "config"):
            changes = wire.decode(body) if body else {}
            if not isinstance(changes, dict):
                raise ValueError("the configuration must be a JSON object")
            self.configure(self.settings.updated(**changes))
            return wire.json_answer(200, self._config())
        if route == ("POST", "reset"):
            self.reset()
            return wire.json_answer(200, self._config())
        if parts and parts[0] == "streams" and method == "GET":
            streams = self.streams.inspect(parts)
            if streams is not None:
                return streams
        if len(parts) == 3 and parts[0] == "apps" and method == "GET":
            if parts[2] == "events":
                return wire.Answer(200, self._events_json(parts[1]), [("x-amzn-RequestId", wire.new_request_id())])
            if parts[2] == "endpoints":
                return wire.json_answer(200, self.store.endpoints(parts[1]))
        return wire.json_answer(404, {"Message": f"No such inspection resource: {method} /_emulator/{'/'.join(parts)}"})

    def _config(self) -> dict:
        return self.settings.as_dict() | {"apps": sorted(self.apps) if self.apps is not None else None}

    def _events_json(self, app: str) -> bytes:
        encode = wire.encode
        entries = [
            b'{"endpoint_id":%s,"event_id":%s,"receive_count":%d,"event":%s}'
            % (encode(endpoint_id), encode(event_id), count, body)
            for endpoint_id, event_id, body, count in self.store.events(app)
        ]
        return b"[" + b",".join(entries) + b"]"
