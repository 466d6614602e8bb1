"""The Kinesis sink against its stream's shard capacity, and its client CPU against PutEvents' (issues 14, 18).

One run, on seeded data (``datagen.py``, events only, event ids given, keys spread evenly over the
endpoints), with the emulator in its own process enforcing the service's shard budget (1,000
records and 1 MiB a second per shard, a burst of one second's worth). Each contender runs in its own
child process, so its CPU time is its own:

- ``kinesis``: ``load_events(sink="kinesis")`` into a stream of ``--shards`` shards, the loader
  deriving its rate from the stream's open shard count;
- ``putevents``: ``load_events()`` of the same file into PutEvents (no latency, no rate limit), the
  path the Kinesis sink's CPU per record is compared with;
- ``hot key``: the Kinesis load again after ``--hot-share`` of the events were moved to one endpoint,
  whose shard then bounds the whole load at 1,000 records/s.

Figures: records/s over the load (wall time around ``load_events``, reading and preparing included)
and over the sending window (first to last record's arrival at the stream), each against the
aggregate capacity (shards x 1,000 records/s); client CPU µs per record or event; records the shard
budget refused; every event checked to be in the stream, duplicates counted.

    .venv/bin/python benchmarks/kinesis_sink.py --events 80000 --shards 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import boto3
import children
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "KINESIS-RESULT "
SHARD_RECORDS_PER_SECOND = 1000
SHARD_BYTES_PER_SECOND = 1024 * 1024
TARGET_CAPACITY = 0.90  # issue 14: >= 90% of the aggregate shard capacity with keys spread evenly
APP = "bench-kinesis"
UNLIMITED_RPS = 1_000_000.0


@dataclass
class Sizes:
    events: int = 80_000
    endpoints: int = 8_000
    shards: int = 4
    hot_events: int = 20_000
    hot_share: float = 0.5


QUICK = Sizes(events=8_000, endpoints=800, shards=1, hot_events=4_000)


# -- child side ----------------------------------------------------------------------------------


def _child(spec: dict) -> None:
    from airflow_provider_pinpoint import load_events

    options = {"sink": "kinesis", "stream_name": spec["stream"]} if spec["sink"] == "kinesis" else {}
    if spec["sink"] == "putevents":
        options["requests_per_second"] = UNLIMITED_RPS
    cpu, wall = time.process_time(), time.perf_counter()
    report = load_events(
        events=spec["events"],
        application_id=APP,
        results=spec["results"],
        endpoint_url=spec["url"],
        region_name="us-east-1",
        progress=False,
        **options,
    )
    figures = {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        # The counts only: the summary also names the results file, a path of this machine.
        "counts": {key: value for key, value in report.summary.to_dict().items() if isinstance(value, int)},
    }
    print(RESULT_PREFIX + json.dumps(figures, default=str), flush=True)


def _child_env() -> dict[str, str]:
    """Test credentials only, and no shared AWS config."""
    env = dict(os.environ)
    return children.without_aws_setup(env)


def _run_child(spec: dict) -> dict:
    return children.run(Path(__file__).resolve(), spec, _child_env(), HERE, RESULT_PREFIX, spec["sink"])


# -- parent side ---------------------------------------------------------------------------------


def _hot(events: Path, out: Path, share: float, seed: int) -> int:
    """``events`` with ``share`` of the rows moved to the endpoint ``ep-hot``; returns how many."""
    table = pq.read_table(events)
    hot = np.random.default_rng(seed).random(table.num_rows) < share
    ids = pc.if_else(pa.array(hot), pa.scalar("ep-hot"), table["EndpointId"])
    pq.write_table(table.set_column(table.schema.get_field_index("EndpointId"), "EndpointId", ids), out)
    return int(hot.sum())


def _kinesis_run(emu, name: str, events: Path, count: int, shards: int, work_dir: Path) -> dict:
    emu.reset()
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=emu.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    print(f"  kinesis ({name}): {count:,} events into {shards} shard(s) ...", flush=True)
    load_before = os.getloadavg()[0]
    figures = _run_child(
        {
            "sink": "kinesis",
            "stream": name,
            "events": str(events),
            "url": emu.url,
            "results": str(work_dir / f"{name}.parquet"),
        }
    )
    records = emu.kinesis_records(name)
    delivered = Counter(json.loads(record["data"]).get("event_id") for record in records)
    expected = set(pq.read_table(events, columns=["EventId"])["EventId"].to_pylist())
    arrivals = [record["arrival"] for record in records]
    window = max(arrivals) - min(arrivals) if arrivals else 0.0
    figures.update(
        events=count,
        shards=shards,
        records=len(records),
        missing=len(expected - set(delivered)),
        duplicates=sum(n - 1 for n in delivered.values() if n > 1),
        over_budget=emu.streams()["stats"]["faults"].get("over_budget", 0),
        window_s=window,
        record_bytes=sum(len(record["data"]) + len(record["partition_key"]) for record in records)
        / max(1, len(records)),
        per_shard=emu.streams()["kinesis"][name]["shards"],
        load_average=(load_before, os.getloadavg()[0]),
    )
    return figures


def _putevents_run(emu, events: Path, count: int, work_dir: Path) -> dict:
    emu.reset()
    print(f"  putevents: {count:,} events ...", flush=True)
    load_before = os.getloadavg()[0]
    figures = _run_child(
        {"sink": "putevents", "events": str(events), "url": emu.url, "results": str(work_dir / "pe.parquet")}
    )
    stats = emu.stats()
    figures.update(
        events=count,
        missing=count - (stats["events_accepted"] - stats["events_duplicated"]),
        load_average=(load_before, os.getloadavg()[0]),
    )
    return figures


def run(emu, work_dir: Path, sizes: Sizes, seed: int = 0) -> dict:
    """Every contender against ``emu`` (a running emulator); the figures by contender."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import datagen

    even = datagen.generate(work_dir / "even", events=sizes.events, endpoints=sizes.endpoints, seed=seed)
    hot_base = datagen.generate(work_dir / "hot", events=sizes.hot_events, endpoints=sizes.endpoints, seed=seed + 1)
    hot_events = work_dir / "hot-events.parquet"
    hot_count = _hot(hot_base.events, hot_events, sizes.hot_share, seed)
    return {
        "sizes": vars(sizes),
        "kinesis": _kinesis_run(emu, "even", even.events, sizes.events, sizes.shards, work_dir),
        "putevents": _putevents_run(emu, even.events, sizes.events, work_dir),
        "hot": _kinesis_run(emu, "hot", hot_events, sizes.hot_events, sizes.shards, work_dir)
        | {"hot_records": hot_count},
    }


def report(figures: dict) -> list[str]:
    """The figures as lines of text, each against its target."""
    kinesis, putevents, hot = figures["kinesis"], figures["putevents"], figures["hot"]
    shards = kinesis["shards"]
    capacity = shards * SHARD_RECORDS_PER_SECOND
    rate = kinesis["events"] / kinesis["wall_s"]
    window_rate = kinesis["records"] / kinesis["window_s"] if kinesis["window_s"] else float("nan")
    byte_share = window_rate * kinesis["record_bytes"] / (shards * SHARD_BYTES_PER_SECOND)
    cpu_record = kinesis["cpu_s"] * 1e6 / kinesis["events"]
    cpu_event = putevents["cpu_s"] * 1e6 / putevents["events"]
    even_bound = _busiest_shard_bound(kinesis)
    hot_bound = _busiest_shard_bound(hot)
    hot_rate = hot["events"] / hot["wall_s"]
    lines = [
        f"kinesis sink, {kinesis['events']:,} events of {figures['sizes']['endpoints']:,} evenly spread keys into "
        f"{shards} shard(s) (capacity {capacity:,} records/s, {shards} MiB/s):",
        f"  records/s over the load (wall {kinesis['wall_s']:.1f} s, reading and preparing included): {rate:,.0f} = "
        f"{rate / capacity:.1%} of capacity (target >= {TARGET_CAPACITY:.0%}: {_verdict(rate / capacity >= TARGET_CAPACITY)})",
        f"  records/s over the sending window ({kinesis['window_s']:.1f} s, first to last arrival): {window_rate:,.0f} = "
        f"{window_rate / capacity:.1%} of capacity (the shards' one-second burst allows up to "
        f"{(kinesis['window_s'] + 1) / max(kinesis['window_s'], 1e-9):.0%}); bytes {byte_share:.0%} of the byte capacity "
        f"({kinesis['record_bytes']:.0f} bytes/record)",
        f"  MD5 spreads the keys unevenly: the busiest shard holds {max(kinesis['per_shard'].values()):,} records, "
        f"which bounds the load at about {even_bound:,.0f} records/s (without the burst); per shard {kinesis['per_shard']}",
        f"  records refused by the shard budget and resent: {kinesis['over_budget']:,}; load average {_load(kinesis)}",
        f"  delivered: {_delivered(kinesis)}; duplicates {kinesis['duplicates']:,}",
        f"client CPU: kinesis {cpu_record:.1f} µs/record, putevents {cpu_event:.1f} µs/event on the same file "
        f"(putevents {putevents['events'] / putevents['wall_s']:,.0f} events/s unthrottled; "
        f"target kinesis <= putevents: {_verdict(cpu_record <= cpu_event)}; "
        f"putevents delivered: {_delivered(putevents)}; load average {_load(putevents)})",
        f"hot key: {hot['hot_records']:,} of {hot['events']:,} events ({hot['hot_records'] / hot['events']:.0%}) on one endpoint: "
        f"{hot_rate:,.0f} records/s over the load ({hot_rate / capacity:.0%} of capacity); the hot shard bounds it at "
        f"about {hot_bound:,.0f} records/s; {hot['over_budget']:,} records refused by the budget and resent; "
        f"per shard {hot['per_shard']}; delivered: {_delivered(hot)}; "
        f"duplicates {hot['duplicates']:,}; load average {_load(hot)}",
    ]
    return lines


def _busiest_shard_bound(figures: dict) -> float:
    """Records/s the load cannot exceed (burst aside): its busiest shard takes 1,000 records a second."""
    busiest = max(figures["per_shard"].values())
    return min(figures["shards"] * SHARD_RECORDS_PER_SECOND, SHARD_RECORDS_PER_SECOND * figures["records"] / busiest)


def _load(figures: dict) -> str:
    before, after = figures["load_average"]
    return f"{before:.1f}->{after:.1f}"


def _delivered(figures: dict) -> str:
    return "all" if not figures["missing"] else f"MISSING {figures['missing']:,}"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small inputs, one shard")
    parser.add_argument("--events", type=int, help="events of the even load (default 80,000)")
    parser.add_argument("--endpoints", type=int, help="endpoints (partition keys) (default 8,000)")
    parser.add_argument("--shards", type=int, help="shards of the stream (default 4)")
    parser.add_argument("--hot-events", type=int, help="events of the hot-key load (default 20,000)")
    parser.add_argument("--hot-share", type=float, help="share of the hot-key load on one endpoint (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0
    from airflow_provider_pinpoint.emulator import run_emulator

    sizes = Sizes(**vars(QUICK)) if args.quick else Sizes()
    for name in ("events", "endpoints", "shards", "hot_events", "hot_share"):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    with (
        tempfile.TemporaryDirectory(prefix="kinesis-bench-") as tmp,
        run_emulator(validate=False, subprocess=True) as emu,
    ):
        figures = run(emu, Path(tmp), sizes, args.seed)
    print("\n".join(report(figures)))
    return 0 if not (figures["kinesis"]["missing"] or figures["hot"]["missing"]) else 1


if __name__ == "__main__":
    sys.exit(main())
