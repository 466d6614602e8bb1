"""Tables in, stream requests and rejections out, for the Kinesis and Firehose sinks: read -> validate
(the rules that hold for streams) -> event-stream records -> pack within the service's quotas.

The PutEvents flow (:mod:`.flow`) joins each endpoint row to the request of its first events; here
an endpoint row is a record of its own, so the endpoints table goes first, whole, its records packed
and handed on at once. What events need of it (``device`` and ``application.version_name``) is kept
as a few Arrow columns of the accepted rows, and joined to each batch of events by endpoint id.
Events then stream batch by batch, as in the PutEvents flow, one batch ahead in a worker thread.
Every input row comes out exactly once: inside exactly one request, or as a :class:`Rejection`.

On a resumed run the endpoints table is still validated whole, rows already settled included, so
that events sent now get the same ``device`` as those sent before; only the rows not settled yet
become records.

With a sync state (``sync``), as in the PutEvents flow: an endpoint row whose content is the one
last accepted on this destination comes out as ``unchanged``, an event whose (endpoint id, event id)
was accepted before as ``already_sent``, neither in a request. An endpoint's content here is what its
``_endpoint.update`` record carries that does not change from run to run: its ``endpoint`` member
(see :func:`_endpoints`). The state must have marked every endpoint about to go before the first record can be sent, so with
a state the endpoint rows to send are held until the whole table has been compared.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare import validation
from airflow_provider_pinpoint.prepare.event_ids import event_ids_for
from airflow_provider_pinpoint.prepare.event_stream import (
    DEVICE_COLUMNS,
    endpoint_content,
    endpoint_records,
    event_content,
    event_records,
)
from airflow_provider_pinpoint.prepare.flow import Rejection, _one_ahead, _rejections
from airflow_provider_pinpoint.prepare.read import check_mapping, read_batches, read_table
from airflow_provider_pinpoint.prepare.record_packing import RecordLimits, oversized, pack_records
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Request, item_batch
from airflow_provider_pinpoint.results.resume import SkipDone

if TYPE_CHECKING:  # the state is imported only by a run that uses one
    from airflow_provider_pinpoint.state.sync import Sync, Unsent

_AT = "_stream_row_at"  # a batch's own row positions, through the resume filter


def prepare_records(
    events: Any = None,
    endpoints: Any = None,
    *,
    application_id: str,
    limits: RecordLimits,
    loaded_at_ms: int,
    column_mapping: Mapping[str, Any] | None = None,
    csv_list_delimiter: str | None = None,
    skip: Mapping[str, Collection[int]] | None = None,
    batch_rows: int = 65_536,
    sync: Sync | None = None,
) -> Iterator[Request | list[Rejection] | Unsent]:
    """Yield stream requests and lists of rejections for the given tables (either may be absent).

    ``loaded_at_ms``: the ``event_timestamp`` of endpoint records whose row has no ``EffectiveDate``.
    ``sync``: the sync state of this destination; rows it says need no sending come out as
    :class:`~airflow_provider_pinpoint.state.Unsent` instead of in a request.
    """
    if events is None and endpoints is None:
        raise InputError("nothing to load: give an events table, an endpoints table, or both")
    if batch_rows < 1:
        raise ValueError("batch_rows must be >= 1")
    check_mapping(column_mapping, events=events, endpoints=endpoints)
    read: dict[str, Any] = {"column_mapping": column_mapping, "csv_list_delimiter": csv_list_delimiter}
    devices = _Devices.none()
    if endpoints is not None:
        records = _RecordMaker(application_id, limits, loaded_at_ms)
        devices = yield from _endpoints(endpoints, read, skip, batch_rows, records, sync)
    if events is None:
        return
    state = validation.EventState()
    batches = iter(read_batches(events, kind="events", batch_rows=batch_rows, skip=skip, **read))
    for out in _one_ahead(batches, lambda batch: _event_batch(batch, state, devices, application_id, limits, sync)):
        yield from out


class _Devices:
    """The accepted endpoint rows' ids and :data:`DEVICE_COLUMNS`, to join to events by endpoint id."""

    def __init__(self, ids: pa.Array, columns: dict[str, pa.Array]) -> None:
        self.ids = ids
        self.columns = columns

    @classmethod
    def none(cls) -> _Devices:
        return cls(pa.array([], pa.string()), {})

    def of(self, endpoint_ids: pa.Array) -> dict[str, pa.Array] | None:
        """Each event's endpoint's columns (null where it has no accepted endpoint row); None if none has."""
        if not self.columns or not len(self.ids):
            return None
        at = pc.index_in(endpoint_ids, value_set=self.ids)
        if at.null_count == len(at):
            return None
        return {name: values.take(at) for name, values in self.columns.items()}


@dataclass(frozen=True, slots=True)
class _ToSend:
    """Validated endpoint rows to send: their columns, sources, row numbers and content."""

    columns: dict[str, pa.Array]
    sources: pa.Array
    rows: pa.Array
    content: pa.Array

    def take(self, chosen: np.ndarray) -> _ToSend:
        at = pa.array(np.flatnonzero(chosen))
        return _ToSend(
            {name: values.take(at) for name, values in self.columns.items()},
            self.sources.take(at),
            self.rows.take(at),
            self.content.take(at),
        )


@dataclass(frozen=True, slots=True)
class _RecordMaker:
    """Endpoint rows -> their ``_endpoint.update`` records, packed."""

    application_id: str
    limits: RecordLimits
    loaded_at_ms: int

    def __call__(self, piece: _ToSend) -> tuple[list[Rejection], list[Request]]:
        ids, n = piece.columns["Id"], len(piece.rows)
        record_ids = event_ids_for(None, ids, piece.content, piece.sources, piece.rows)
        records = endpoint_records(piece.columns, record_ids, self.application_id, self.loaded_at_ms)
        items = item_batch(ENDPOINT, ids, pa.nulls(n, pa.string()), piece.sources, piece.rows, records)
        return _packed(items, self.limits)


def _endpoints(
    source: Any,
    read: Mapping[str, Any],
    skip: Mapping[str, Collection[int]] | None,
    batch_rows: int,
    records: _RecordMaker,
    sync: Sync | None,
) -> Generator[Request | list[Rejection] | Unsent, None, _Devices]:
    """Yield the endpoint rows' requests and rejections (rows not settled before only), and with a
    sync state the unchanged rows; return the accepted rows' device columns (all of them) for the events."""
    table = read_table(source, kind="endpoints", batch_rows=batch_rows, **read)
    settled = _settled(table, skip)
    seen = validation.EndpointsSeen()
    kept_ids: list[pa.Array] = []
    kept_devices: list[dict[str, pa.Array]] = []
    held: list[_ToSend] = []  # with a sync state: the rows to send, until the state has compared them all
    for start in range(0, table.num_rows, batch_rows):
        checked = validation.endpoints(table.slice(start, batch_rows), seen, rules="stream")
        accepted = ~checked.rejected
        keep = pa.array(accepted)
        ids = checked.columns["Id"].filter(keep)
        kept_ids.append(ids)
        kept_devices.append(
            {name: checked.columns[name].filter(keep) for name in DEVICE_COLUMNS if name in checked.columns}
        )
        fresh = ~settled[start : start + len(checked)]
        rejections = [
            r
            for i, r in zip(sorted(checked.reasons), _rejections(checked, ENDPOINT, "Id", None), strict=True)
            if fresh[i]
        ]
        send = accepted & fresh
        requests: list[Request] = []
        if send.any():
            chosen = pa.array(send)
            columns = {name: values.filter(chosen) for name, values in checked.columns.items()}
            piece = _ToSend(columns, checked.sources.filter(chosen), checked.rows.filter(chosen), _content(columns))
            if sync is None:
                more, requests = records(piece)
                rejections += more
            else:
                # What the state compares: the record's ``endpoint`` member (the row's fields without
                # Address, EffectiveDate included). The rest of the record is that content again
                # (``device``, ``version_name``), the endpoint id (the state's key), the application
                # (one state each), or what changes on every run though the row did not: the arrival
                # time, an ``event_timestamp`` taken from the load's start, a record id derived from
                # the row's file and position.
                sync.add_endpoints(columns["Id"], piece.content)
                held.append(piece)
        if rejections:
            yield rejections
        yield from requests
        del checked
    del table
    if held:
        assert sync is not None
        yield from _synced(held, sync, records, batch_rows)
    if not kept_ids:
        return _Devices.none()
    names = sorted(set().union(*kept_devices))
    ids = pa.concat_arrays(kept_ids)
    columns = {
        name: pa.concat_arrays(
            [
                part.get(name, pa.nulls(len(part_ids), pa.string()))
                for part, part_ids in zip(kept_devices, kept_ids, strict=True)
            ]
        )
        for name in names
    }
    return _Devices(ids, columns)


def _content(columns: Mapping[str, pa.Array]) -> pa.Array:
    return endpoint_content(columns, len(columns["Id"]))


def _synced(
    held: list[_ToSend], sync: Sync, records: _RecordMaker, batch_rows: int
) -> Iterator[Request | list[Rejection] | Unsent]:
    """The held endpoint rows once the state has compared them all (and marked those about to go):
    the unchanged ones as :class:`Unsent`, the others as records."""
    same = sync.unchanged_endpoints()
    offset = 0
    for piece in held:
        mine = same[offset : offset + len(piece.rows)]
        offset += len(piece.rows)
        if mine.any():
            ids = piece.columns["Id"].filter(pa.array(mine))
            where = pa.array(mine)
            yield from sync.unsent(
                sync.UNCHANGED,
                ENDPOINT,
                ids,
                None,
                piece.sources.filter(where),
                piece.rows.filter(where),
                chunk=batch_rows,
            )
        if not mine.all():
            rejections, requests = records(piece.take(~mine) if mine.any() else piece)
            if rejections:
                yield rejections
            yield from requests
    held.clear()


def _settled(table: pa.Table, skip: Mapping[str, Collection[int]] | None) -> np.ndarray:
    """Which rows of the endpoints table a previous run settled (the resume filter's own rules and checks)."""
    settled = np.zeros(table.num_rows, dtype=bool)
    if not skip:
        return settled
    positions = table.append_column(_AT, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    kept = SkipDone(skip)(positions).column(_AT).to_numpy()
    settled[:] = True
    settled[kept] = False
    return settled


def _event_batch(
    batch: pa.RecordBatch,
    state: validation.EventState,
    devices: _Devices,
    application_id: str,
    limits: RecordLimits,
    sync: Sync | None = None,
) -> list[Request | list[Rejection] | Unsent]:
    """One batch of events: its rejections, the events the sync state says were sent before, then its requests."""
    checked = validation.events(batch, state, rules="stream")
    rejections = _rejections(checked, EVENT, "EndpointId", "EventId")
    keep = pa.array(~checked.rejected)
    columns = {name: values.filter(keep) for name, values in checked.columns.items()}
    sources, rows = checked.sources.filter(keep), checked.rows.filter(keep)
    del checked
    n = len(rows)
    out: list[Request | list[Rejection] | Unsent] = []
    if n:
        given = columns.get("EventId")
        event_ids = given
        if given is None or given.null_count:
            event_ids = event_ids_for(given, columns["EndpointId"], event_content(columns, n), sources, rows)
        assert event_ids is not None
        if sync is not None:
            sent = sync.already_sent(columns["EndpointId"], event_ids)
            if sent.any():
                taken = pa.array(sent)
                out += sync.unsent(
                    sync.ALREADY_SENT,
                    EVENT,
                    columns["EndpointId"].filter(taken),
                    event_ids.filter(taken),
                    sources.filter(taken),
                    rows.filter(taken),
                    chunk=len(sent),
                )
                rest = pa.array(~sent)
                columns = {name: values.filter(rest) for name, values in columns.items()}
                event_ids, sources, rows = (c.filter(rest) for c in (event_ids, sources, rows))
    if len(rows):
        records = event_records(columns, event_ids, application_id, devices.of(columns["EndpointId"]))
        items = item_batch(EVENT, columns["EndpointId"], event_ids, sources, rows, records)
        more, requests = _packed(items, limits)
        rejections += more
        out += requests
    return [rejections, *out] if rejections else out


def _packed(items: pa.RecordBatch, limits: RecordLimits) -> tuple[list[Rejection], list[Request]]:
    """Records over their quota as rejections; the rest packed into requests."""
    sizes = limits.record_sizes(items.column("body"), items.column("endpoint_id"))
    over = oversized(items, sizes, limits)
    rejections: list[Rejection] = []
    if len(over.at):
        record_types, ids, event_ids = (items.column(name) for name in ("record_type", "endpoint_id", "event_id"))
        sources, rows = items.column("source"), items.column("source_row")
        for i, message in zip(over.at.tolist(), over.messages, strict=True):
            rejections.append(
                Rejection(
                    record_types[i].as_py(),
                    ids[i].as_py(),
                    event_ids[i].as_py(),
                    sources[i].as_py(),
                    rows[i].as_py(),
                    message,
                )
            )
        fits = np.ones(len(sizes), dtype=bool)
        fits[over.at] = False
        items, sizes = items.filter(pa.array(fits)), sizes[fits]
    return rejections, pack_records(items, sizes, limits)
