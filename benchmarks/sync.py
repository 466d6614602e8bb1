"""The sync state (issue 15): a daily sync of changed endpoints against a full sync, and a large state.

Side by side in one run, each in its own child process (so CPU time and peak RSS are its own), with
the emulator in another process (validation off, no rate limit) and the loader unthrottled:

- ``full``: day 2's endpoints table sent whole, no state (what a daily sync costs without one);
- ``first``: day 1's table with a new state (every endpoint goes; the state is written);
- ``sync``: day 2's table with that state: only the ``--changed`` share of endpoints differs.

Reported: requests and client CPU of ``sync`` against ``full`` (targets: <= 2.5% and <= 20%). The two
run back to back ``--pairs`` times (default 3), each ``sync`` from a copy of the state ``first`` left;
the CPU verdict is on the median pair's ratio, and every pair's is printed: this machine's speed moves
by up to a third from one minute to the next, and it moves both runs of a pair alike.

Each load runs as the Airflow operator and the ``pinpoint-load`` command run it: with pandas hidden
from pyarrow (``common.arrow.hide_pandas``), since a scheduled sync makes no DataFrame and pyarrow
would otherwise import pandas (0.3 to 0.45 s of CPU here) only to look for pandas values. A notebook
has pandas imported before it calls ``load_events``, so it does not pay that either. ``--with-pandas``
measures a bare script's call instead, which does pay it (the way this benchmark measured until
2026-12-03).

With ``--padded-state N``, instead of the daily comparison, the daily sync of ``--endpoints`` runs
against a state padded to N endpoints (other endpoints' entries): a shard's view of a large state.
With ``--state-endpoints N`` it also seeds a state of N endpoints (their exact bodies hashed by the
loader's own preparation, nothing sent) and measures a sync of the N-endpoint table with
``--changed`` of it changed: peak RSS (target: <= 1 GB) and the state's size on disk. With
``--state-shards K`` that table is first planned into K shards (``sharding.plan_shards``) and each
shard is synced in its own process against the whole state, with its own state part, as a mapped
Airflow task would: the peak is then the largest shard's. ``--no-single`` skips the one-process sync.

    .venv/bin/python benchmarks/sync.py --endpoints 1000000
    .venv/bin/python benchmarks/sync.py --endpoints 100000 --state-endpoints 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import children
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "SYNC-RESULT "
APP = "bench-sync"
UNLIMITED_RPS = 1_000_000.0
TARGET_REQUESTS = 0.025
TARGET_CPU = 0.20
TARGET_PEAK_MB = 1024.0
_CHUNK = 1_000_000


def write_days(
    directory: Path, endpoints: int, changed: float, seed: int, shuffled: bool = False
) -> tuple[Path, Path, int]:
    """Day 1's endpoints table and day 2's, where a ``changed`` share of the rows has another lifetime
    value; written a million rows at a time (datagen's columns, ids numbered across the chunks).

    The rows are in the order of their ids, as a table exported ``ORDER BY`` its key; ``shuffled``
    puts each day's rows in another random order (within each million rows), as an export in no
    particular order: then no shortcut for ordered ids or for ids in last run's order applies."""
    import datagen

    rng = np.random.default_rng(seed)
    order = "shuffled" if shuffled else "sorted"
    day1, day2 = (directory / f"day{day}-{endpoints}-{order}.parquet" for day in (1, 2))
    picked = np.zeros(endpoints, dtype=bool)
    picked[rng.choice(endpoints, int(round(endpoints * changed)), replace=False)] = True
    writers: list[pq.ParquetWriter] = []
    try:
        for start in range(0, endpoints, _CHUNK):
            n = min(_CHUNK, endpoints - start)
            table = datagen._endpoints_table(rng, n, 2)
            table = table.set_column(0, "Id", datagen._ids("ep-", start, start + n, 9))
            value = table.column("Metrics.lifetime_value")
            moved = pc.if_else(pa.array(picked[start : start + n]), pc.add(value, 1.0), value)
            at = table.schema.get_field_index("Metrics.lifetime_value")
            tables = [table, table.set_column(at, "Metrics.lifetime_value", moved)]
            if shuffled:
                tables = [each.take(pa.array(rng.permutation(n))) for each in tables]
            if not writers:
                writers = [pq.ParquetWriter(day1, table.schema), pq.ParquetWriter(day2, table.schema)]
            for writer, each in zip(writers, tables, strict=True):
                writer.write_table(each)
    finally:
        for writer in writers:
            writer.close()
    return day1, day2, int(picked.sum())


def child(spec: dict) -> None:
    """One measured piece of work in this process: a load, or seeding a state without sending."""
    cpu, wall = time.process_time(), time.perf_counter()
    if spec["kind"] == "seed":
        summary = seed_state(Path(spec["endpoints"]), spec["state"])
    else:
        from airflow_provider_pinpoint import load_events
        from airflow_provider_pinpoint.common.arrow import hide_pandas

        if not spec.get("with_pandas"):
            hide_pandas()  # as the operator and the CLI run a load (see the module docstring)
        options = {"state": spec["state"]} if spec.get("state") else {}
        if spec.get("state_part"):
            options["state_part"] = spec["state_part"]
        report = load_events(
            endpoints=spec["endpoints"],
            application_id=APP,
            results=spec["results"],
            endpoint_url=spec["url"],
            region_name="us-east-1",
            requests_per_second=UNLIMITED_RPS,
            progress=False,
            **options,
        )
        summary = report.summary.to_dict()
    figures = {
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "summary": summary,
    }
    print(RESULT_PREFIX + json.dumps(figures, default=str), flush=True)


def seed_state(endpoints: Path, state: str) -> dict:
    """A state holding every endpoint of the table as accepted, built by the loader's own preparation
    (the bodies it would send, hashed) and committed as if every endpoint had been accepted."""
    from airflow_provider_pinpoint.prepare import flow, validation
    from airflow_provider_pinpoint.state import StateFiles, Sync

    sync = Sync(StateFiles(state, application_id=APP), full_refresh=True)
    read = {"column_mapping": None, "csv_list_delimiter": None, "skip": None}
    with sync.files.lock("seed"):
        # The endpoints step of prepare() alone: validated, reshaped and hashed as a load does, not packed.
        rejections, pending, _ = flow._endpoints(str(endpoints), read, 65_536, validation.EventState(), sync)
        rows = len(rejections) + len(pending)
        del pending
        sync._accepted_endpoints = [sync._candidate_ids]  # as if every endpoint had been accepted
        written = sync.commit()
    return {"rows": rows, "written": written}


# --with-pandas: every load of this run as a bare script's call (pandas imported by pyarrow).
_with_pandas = False


def run_child(spec: dict) -> dict:
    spec = {**spec, "with_pandas": _with_pandas}
    env = os.environ | {"PYTHONPATH": str(HERE), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return children.run(Path(__file__).resolve(), spec, env, HERE, RESULT_PREFIX, spec["kind"])


def _size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*.parquet"))


def _line(name: str, figures: dict) -> str:
    s = figures["summary"]
    return (
        f"  {name:<6} requests {s['requests']:>7,}  accepted {s['accepted']:>9,}  unchanged {s.get('unchanged', 0):>9,}"
        f"  client CPU {figures['cpu_s']:7.2f} s  wall {figures['wall_s']:7.2f} s  peak RSS {figures['peak_rss_mb']:6.0f} MB"
    )


def daily(
    work: Path, url: str, endpoints: int, changed: float, seed: int, shuffled: bool = False, pairs: int = 3
) -> dict:
    """Day 1 with a new state (``first``), then ``pairs`` times a full sync of day 2 followed by a daily
    sync of day 2 against a copy of the state day 1 left: each pair measured back to back, so that a
    change of this machine's speed between runs (a third, on a shared 2-core machine) moves both
    figures of a pair alike. The CPU verdict is on the median pair's ratio; every pair is printed."""
    day1, day2, moved = write_days(work, endpoints, changed, seed, shuffled)
    kept = work / f"state-{endpoints}-{'shuffled' if shuffled else 'sorted'}"

    def load(name: str, table: Path, state: Path | None) -> dict:
        spec = {
            "kind": "load",
            "endpoints": str(table),
            "results": str(work / f"results-{name}-{endpoints}.parquet"),
            "url": url,
            "state": None if state is None else str(state),
        }
        figures = run_child(spec)
        print(_line(name, figures), flush=True)
        return figures

    first = load("first", day1, kept)
    measured = []
    for pair in range(1, pairs + 1):
        state = work / f"state-sync-{pair}"  # each daily sync starts from what day 1 left
        shutil.copytree(kept, state)
        full, sync = load(f"full{pair}", day2, None), load(f"sync{pair}", day2, state)
        assert sync["summary"]["accepted"] == moved and sync["summary"]["unchanged"] == endpoints - moved
        measured.append({"full": full, "sync": sync, "cpu_ratio": sync["cpu_s"] / full["cpu_s"]})
    cpu = statistics.median(pair["cpu_ratio"] for pair in measured)
    full, sync = measured[0]["full"], measured[0]["sync"]
    requests = sync["summary"]["requests"] / full["summary"]["requests"]
    order = "each day in another random order" if shuffled else "rows in id order"
    print(f"  {endpoints:,} endpoints, {moved:,} changed ({moved / endpoints:.1%}), {order}")
    print(
        f"  requests: sync / full = {requests:.2%} (target <= {TARGET_REQUESTS:.1%}): {_verdict(requests <= TARGET_REQUESTS)}"
    )
    each = ", ".join(f"{pair['cpu_ratio']:.1%}" for pair in measured)
    print(
        f"  client CPU: sync / full = {cpu:.1%}, the median of {len(measured)} pairs ({each}) "
        f"(target <= {TARGET_CPU:.0%}): {_verdict(cpu <= TARGET_CPU)}"
    )
    print(f"  state on disk: {_size(kept) / 2**20:.1f} MB")
    return {
        "endpoints": endpoints,
        "changed": moved,
        "shuffled": shuffled,
        "first": first,
        "pairs": measured,
        "requests_ratio": requests,
        "cpu_ratio": cpu,
    }


def large_state(work: Path, url: str, endpoints: int, changed: float, seed: int, shards: int, single: bool) -> dict:
    day1, day2, moved = write_days(work, endpoints, changed, seed)
    state = work / f"state-{endpoints}"
    seeded = run_child({"kind": "seed", "endpoints": str(day1), "state": str(state)})
    size = _size(state)
    print(f"  seeded a state of {endpoints:,} endpoints in {seeded['wall_s']:.0f} s: {size / 2**20:.1f} MB on disk")
    out: dict = {"endpoints": endpoints, "changed": moved, "state_bytes": size, "seed": seeded}
    single_state = work / f"state-{endpoints}-single"  # the one-process sync starts from the same state
    if single:
        shutil.copytree(state, single_state)
    if shards:
        from airflow_provider_pinpoint.sharding import plan_shards

        planned = plan_shards(endpoints=str(day2), staging=str(work / "staging"), shards=shards)
        runs = []
        for shard in planned:
            spec = {
                "kind": "load",
                "endpoints": shard["endpoints"],
                "results": str(work / f"results-shard-{shard['shard']}.parquet"),
                "url": url,
                "state": str(state),
                "state_part": f"shard-{shard['shard']}",
            }
            runs.append(run_child(spec))
            print(_line(f"s{shard['shard']}", runs[-1]), flush=True)
        peak = max(run["peak_rss_mb"] for run in runs)
        print(
            f"  {len(runs)} shards of ~{endpoints // len(runs):,} endpoints against the {endpoints:,}-endpoint state: "
            f"largest peak RSS {peak:,.0f} MB (target <= {TARGET_PEAK_MB:,.0f}): {_verdict(peak <= TARGET_PEAK_MB)}; "
            f"client CPU {sum(run['cpu_s'] for run in runs):.1f} s in all"
        )
        assert sum(run["summary"]["accepted"] for run in runs) == moved
        out["shards"] = runs
    if single:
        figures = run_child(
            {
                "kind": "load",
                "endpoints": str(day2),
                "results": str(work / f"results-large-{endpoints}.parquet"),
                "url": url,
                "state": str(single_state),
            }
        )
        print(_line("sync", figures), flush=True)
        peak = figures["peak_rss_mb"]
        print(
            f"  one process: peak RSS {peak:,.0f} MB (target <= {TARGET_PEAK_MB:,.0f}): {_verdict(peak <= TARGET_PEAK_MB)}"
        )
        assert figures["summary"]["accepted"] == moved
        out["single"] = figures
    print(f"  state after the sync: {_size(state) / 2**20:.1f} MB on disk")
    return out


def padded_state(work: Path, url: str, endpoints: int, state_endpoints: int, changed: float, seed: int) -> dict:
    """A daily sync of ``endpoints`` (one shard's worth) against a state of ``state_endpoints``: the
    state is seeded from the day's table, then padded with other endpoints' entries (random hashes)
    up to that size, so that the whole state is read as a sync reads it. Peak RSS and size on disk."""
    import datagen

    from airflow_provider_pinpoint.state.files import ENDPOINTS_SCHEMA

    day1, day2, moved = write_days(work, endpoints, changed, seed)
    state = work / f"state-padded-{state_endpoints}"
    run_child({"kind": "seed", "endpoints": str(day1), "state": str(state)})
    main = state / "pinpoint" / APP / "endpoints" / "main.parquet"
    real = pq.read_table(main)
    rng = np.random.default_rng(seed + 1)
    with pq.ParquetWriter(main.with_suffix(".tmp"), ENDPOINTS_SCHEMA, compression="zstd") as writer:
        writer.write_table(real.cast(ENDPOINTS_SCHEMA))
        for start in range(endpoints, state_endpoints, _CHUNK):
            n = min(_CHUNK, state_endpoints - start)
            hashes = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(rng.bytes(16 * n))])
            stamps = pa.repeat(real.column("accepted_at")[0], n)
            writer.write_table(
                pa.table([datagen._ids("ep-", start, start + n, 9), hashes, stamps], schema=ENDPOINTS_SCHEMA)
            )
    os.replace(main.with_suffix(".tmp"), main)
    size = main.stat().st_size
    print(f"  state of {state_endpoints:,} endpoints: {size / 2**20:.1f} MB on disk", flush=True)
    figures = run_child(
        {
            "kind": "load",
            "endpoints": str(day2),
            "results": str(work / "results-padded.parquet"),
            "url": url,
            "state": str(state),
        }
    )
    print(_line("sync", figures), flush=True)
    peak = figures["peak_rss_mb"]
    print(
        f"  a {endpoints:,}-endpoint sync against it: peak RSS {peak:,.0f} MB "
        f"(target <= {TARGET_PEAK_MB:,.0f}): {_verdict(peak <= TARGET_PEAK_MB)}"
    )
    assert figures["summary"]["accepted"] == moved
    return {"endpoints": endpoints, "state_endpoints": state_endpoints, "state_bytes": size, "sync": figures}


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoints", type=int, default=1_000_000, help="daily sync: endpoints (default 1,000,000)")
    parser.add_argument(
        "--changed", type=float, default=0.02, help="share of endpoints changed on day 2 (default 0.02)"
    )
    parser.add_argument("--state-endpoints", type=int, default=0, help="also a sync against a state this large")
    parser.add_argument("--state-shards", type=int, default=0, help="also sync the large table in this many shards")
    parser.add_argument("--no-single", action="store_true", help="skip the one-process sync of the large table")
    parser.add_argument(
        "--padded-state",
        type=int,
        default=0,
        help="also a daily sync of --endpoints against a state padded to this many endpoints (one shard's view)",
    )
    parser.add_argument(
        "--shuffled",
        action="store_true",
        help="daily sync: each day's rows in another random order (default: in id order, as exported ORDER BY id)",
    )
    parser.add_argument(
        "--with-pandas",
        action="store_true",
        help="run each load as a bare script does, pandas imported (default: hidden, as the operator and CLI run it)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="daily sync: full and daily syncs measured back to back this many times; the median ratio (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    global _with_pandas
    _with_pandas = args.with_pandas
    from airflow_provider_pinpoint.emulator import run_emulator

    figures: dict = {"load_average_before": os.getloadavg(), "with_pandas": args.with_pandas}
    print(
        "loads run "
        + (
            "as a bare script's call (pandas imported)"
            if args.with_pandas
            else "as the operator and CLI run them (pandas hidden)"
        )
    )
    with (
        tempfile.TemporaryDirectory(prefix="pinpoint-sync-bench-") as tmp,
        run_emulator(validate=False, subprocess=True) as emu,
    ):
        work = Path(tmp)
        if args.endpoints and not args.padded_state:
            print(f"[daily sync: {args.endpoints:,} endpoints]", flush=True)
            figures["daily"] = daily(
                work, emu.url, args.endpoints, args.changed, args.seed, args.shuffled, max(1, args.pairs)
            )
        if args.state_endpoints:
            print(f"[large state: {args.state_endpoints:,} endpoints]", flush=True)
            figures["large"] = large_state(
                work, emu.url, args.state_endpoints, args.changed, args.seed, args.state_shards, not args.no_single
            )
        if args.padded_state:
            print(f"[{args.endpoints:,} endpoints against a {args.padded_state:,}-endpoint state]", flush=True)
            figures["padded"] = padded_state(
                work, emu.url, args.endpoints, args.padded_state, args.changed, args.seed + 2
            )
    figures["load_average_after"] = os.getloadavg()
    print(f"  load average {figures['load_average_before'][0]:.1f} -> {figures['load_average_after'][0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
