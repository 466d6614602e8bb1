"""The benchmark harness (``make bench``): the loader against the script a data engineer would write.

For each scenario it generates seeded data (``datagen.py``), starts the emulator in its own process
(recording on, validation off, optional latency and rate limit) and runs each contender in its own
subprocess on the same data, so that CPU time and peak RSS are that contender's alone:

- ``baseline``: ``baseline.py``, pandas ``iterrows`` + sequential boto3 ``put_events``;
- ``loader``: ``airflow_provider_pinpoint.load_events``, the public API, with a results file;
- ``cli``: the ``pinpoint-load`` command in its own process, timed from its start to its exit, so
  that interpreter start-up and imports are counted in its CPU and wall time.

Figures per run: events/s (wall, around the work), client CPU microseconds per event (the process's
CPU time over the work, all threads; interpreter start and imports excluded, reported separately),
peak RSS. After each run the emulator's statistics must show every event delivered; duplicates are
reported. Scenarios:

- ``throughput``: 20 ms latency, no rate limit. The baseline may run on a prefix of the events
  (``--baseline-events``): it is then reported as a rate, and said so.
- ``cli``: a load as users run it: ``pinpoint-load`` on 200,000 events of 20,000 endpoints with
  given event ids, events only (no endpoints table), 20 ms latency, start-up included; next to it
  the same data through ``load_events`` in a child (start-up excluded) and the baseline on a
  prefix (``--cli-baseline-events``, start-up excluded: that favours the baseline).
- ``rate15`` / ``rate200``: the emulator limits to 15 / 200 requests/s and the loader is set to the
  same rate, for at least ``--rate-seconds``; reported as achieved requests/s against the limit.
- ``memory``: the loader's peak RSS on a small and a 10x larger input (no latency, no rate limit).
- ``stages``: ``stages.py`` in a child: client CPU per event of each stage on its own.
- ``sync``: ``sync.py`` in a child: a daily sync of ``--sync-endpoints`` endpoints (default 200,000)
  with 2% changed against a full sync, requests and client CPU side by side (its own emulator);
  run ``sync.py`` alone for 1,000,000 endpoints and a 10,000,000-endpoint state.
- ``kinesis``: ``kinesis_sink.py``: the Kinesis sink's records/s against its stream's shard capacity,
  its client CPU per record against PutEvents' per event on the same data, and a hot key.

Every loader run is also checked for exact packing: PutEvents requests answered against
ceil(events / 100). Each rate scenario also gives its wall time against requests / rate.

The figures go to ``bench.json`` in ``--out`` (default ``benchmarks/results``) and ``charts.py``
draws the PNG charts from it there (``--no-charts`` skips both; ``charts.py`` redraws them alone).

``--quick`` runs every scenario on small inputs in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import children

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "BENCH-RESULT "
UNLIMITED_RPS = 1_000_000.0  # the loader's rate limit when the scenario has none
SCENARIOS = ("throughput", "cli", "rate15", "rate200", "memory", "stages", "sync", "kinesis")
EVENTS_PER_REQUEST = 100
BIN = Path(sys.executable).parent
# Targets printed next to the figures (issues 6 and 18).
TARGET_CLI_RATIO = 15.0  # cli: events/s against the baseline's
TARGET_CLI_CPU_US = 25.0  # cli: client CPU µs/event, start-up included
TARGET_INPROCESS_CPU_US = 20.0  # cli scenario's data through load_events in a child
TARGET_RATE_WALL = 1.01  # wall time against requests / rate


@dataclass
class Sizes:
    events: int = 1_000_000
    endpoints: int = 100_000
    baseline_events: int = 50_000
    latency_ms: float = 20.0
    rate_seconds: float = 32.0
    memory_sizes: tuple[int, ...] = (500_000, 5_000_000)
    cli_events: int = 200_000
    cli_endpoints: int = 20_000
    cli_baseline_events: int = 20_000
    stages_events: int = 200_000
    stages_endpoints: int = 20_000
    stages_repeat: int = 3
    sync_endpoints: int = 200_000


QUICK = Sizes(
    events=20_000,
    endpoints=2_000,
    baseline_events=2_000,
    rate_seconds=3.0,
    memory_sizes=(50_000, 200_000),
    cli_events=20_000,
    cli_endpoints=2_000,
    cli_baseline_events=2_000,
    stages_events=20_000,
    stages_endpoints=2_000,
    stages_repeat=1,
    sync_endpoints=20_000,
)


@dataclass
class Run:
    scenario: str
    contender: str
    events: int
    endpoints: int
    figures: dict
    emulator: dict
    notes: list[str] = field(default_factory=list)
    series: dict = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """PutEvents requests the emulator answered (429s not counted)."""
        return self.emulator["requests"] - self.emulator["faults"].get("rate_limit", 0)

    @property
    def events_per_s(self) -> float:
        return self.events / self.figures["wall_s"]

    @property
    def cpu_us_per_event(self) -> float:
        return self.figures["cpu_s"] * 1e6 / self.events


# ---------------------------------------------------------------------------------------------
# Child side: one contender, measured from inside its own process.


def _child(spec: dict) -> None:
    if spec["contender"] == "baseline":
        import baseline

        def work() -> dict:
            return baseline.send_events(spec["events"], spec.get("endpoints"), spec["app"], spec["url"])
    else:
        from airflow_provider_pinpoint import load_events

        if not spec.get("first_call"):
            _import_what_the_loader_imports_on_first_use()

        def work() -> dict:
            report = load_events(
                events=spec["events"],
                endpoints=spec.get("endpoints"),
                application_id=spec["app"],
                results=spec["results"],
                endpoint_url=spec["url"],
                region_name="us-east-1",
                requests_per_second=spec["rps"],
                max_in_flight=spec["max_in_flight"],
                progress=False,
            )
            return report.summary.to_dict()

    start_usage = resource.getrusage(resource.RUSAGE_SELF)
    started_at = time.time()
    cpu, wall = time.process_time(), time.perf_counter()
    summary = _profiled(work, spec["profile"]) if spec.get("profile") else work()
    wall = time.perf_counter() - wall
    ended_at = time.time()
    cpu = time.process_time() - cpu
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "wall_s": wall,
        "cpu_s": cpu,
        "startup_cpu_s": start_usage.ru_utime + start_usage.ru_stime,
        "first_call": bool(spec.get("first_call")),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "summary": summary,
        "started_at": started_at,
        "ended_at": ended_at,
    }
    print(RESULT_PREFIX + json.dumps(figures, default=str), flush=True)


# Modules the loader imports inside its first call rather than at import time (the client library,
# the reader and validation). The baseline imports boto3 and pandas at the top of its module, so they
# fall into its start-up, which is not counted: the loader's are imported before its clock starts too.
# The cli scenario counts every import.
LAZY_IMPORTS = ("boto3", "botocore.session", "airflow_provider_pinpoint.prepare.flow", "pyarrow.parquet")


def _import_what_the_loader_imports_on_first_use() -> None:
    """The loader's first-use imports, and the service model validation reads once a process (a dry
    run of one row): one-time costs of a process, counted in its start-up like the baseline's."""
    import importlib

    import pyarrow as pa

    from airflow_provider_pinpoint import load_events

    for name in LAZY_IMPORTS:
        importlib.import_module(name)
    one = pa.table({"EndpointId": ["e"], "EventType": ["view"], "Timestamp": ["2026-01-01T00:00:00Z"]})
    load_events(events=one, application_id="warm-up", dry_run=True, progress=False)


def _profiled(work, path: str):
    """Run ``work`` under cProfile in every thread it starts, on each thread's own CPU clock; merge the stats.

    cProfile follows only the thread that enabled it, and the loader sends from a thread pool:
    each new thread enables its own profiler on its first profiling event.
    """
    import cProfile
    import pstats
    import threading

    profilers = []

    def start_in_thread(frame, event, arg) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()

    main = cProfile.Profile(time.thread_time)
    profilers.append(main)
    threading.setprofile(start_in_thread)
    try:
        summary = main.runcall(work)
    finally:
        threading.setprofile(None)
    stats = pstats.Stats(main)
    for profiler in profilers[1:]:
        profiler.disable()
        stats.add(profiler)
    stats.dump_stats(path)
    return summary


# Where the children keep their compiled bytecode (set by ``run_scenarios``; None: as this environment says).
PYCACHE: Path | None = None


def _child_env() -> dict[str, str]:
    """Test credentials only, and no shared AWS config: nothing of this machine's AWS setup is used.

    With ``PYCACHE`` set, the children cache compiled bytecode there, as an installed package has it
    (pip compiles at install; Python writes ``__pycache__`` on first import), even where the
    environment says PYTHONDONTWRITEBYTECODE and the install compiled nothing: otherwise every
    process compiles every module it imports again, about 0.7 s of CPU per start on this machine.
    """
    env = dict(os.environ)
    if PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return children.without_aws_setup(env)


def _run_child(spec: dict) -> dict:
    return children.run(Path(__file__).resolve(), spec, _child_env(), HERE, RESULT_PREFIX, spec["contender"])


def _run_cli(spec: dict) -> dict:
    """``pinpoint-load`` in its own process: wall time from before its start to its exit, and its CPU
    time and peak RSS from ``wait4``, so interpreter start-up, imports and exit are all counted."""
    argv = [
        str(BIN / "pinpoint-load"),
        *("--application-id", spec["app"], "--events", spec["events"], "--results", spec["results"]),
        *("--endpoint-url", spec["url"], "--region", "us-east-1", "--no-progress"),
        *("--requests-per-second", str(spec["rps"]), "--max-in-flight", str(spec["max_in_flight"])),
    ]
    if spec.get("endpoints"):
        argv += ["--endpoints", spec["endpoints"]]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        wall = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=_child_env(), cwd=HERE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - wall
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"pinpoint-load failed (exit {process.returncode}):\n{stderr[-3000:]}")
    summary = dict(line.split(None, 1) for line in stdout.splitlines() if line.strip() and " " in line.strip())
    summary["results"] = spec["results"]
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "startup_cpu_s": 0.0,
        "startup_included": True,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "summary": summary,
    }


# ---------------------------------------------------------------------------------------------
# Parent side: data, emulator, scenarios, checks, report.


def _delivery(emu, expected_events: int) -> tuple[dict, list[str]]:
    stats = emu.stats()
    distinct = stats["events_accepted"] - stats["events_duplicated"]
    problems = []
    if distinct != expected_events:
        problems.append(f"DELIVERY CHECK FAILED: {distinct} distinct events accepted, {expected_events} expected")
    if stats["events_rejected"] or stats["events_dropped"]:
        problems.append(f"emulator rejected {stats['events_rejected']}, dropped {stats['events_dropped']}")
    return stats, problems


def _contend(
    emu,
    contender: str,
    scenario: str,
    dataset,
    work_dir: Path,
    *,
    rps: float,
    args,
    events: int,
    with_endpoints: bool = True,
    tag: str = "",
) -> Run:
    emu.reset()
    emu.configure(**scenario_faults(scenario, args))
    app = f"bench-{scenario}-{contender}"
    spec = {
        "contender": contender,
        "events": str(dataset.head if contender == "baseline" and dataset.head else dataset.events),
        "endpoints": str(dataset.endpoints) if with_endpoints else None,
        "app": app,
        "url": emu.url,
        "rps": rps,
        "max_in_flight": args.max_in_flight,
        "results": str(work_dir / f"results-{scenario}-{contender}{tag}.parquet"),
        "first_call": args.first_call,
    }
    if args.profile and contender == "loader":
        profile = Path(args.profile).resolve().with_suffix(f".{scenario}.prof")
        profile.parent.mkdir(parents=True, exist_ok=True)
        spec["profile"] = str(profile)
    print(f"  {contender}: {events:,} events ...", flush=True)
    emulator_cpu = _emulator_cpu_s()
    load_before = os.getloadavg()[0]
    figures = _run_cli(spec) if contender == "cli" else _run_child(spec)
    figures["emulator_cpu_s"] = _emulator_cpu_s() - emulator_cpu
    figures["load_average"] = (load_before, os.getloadavg()[0])
    stats, problems = _delivery(emu, events)
    run = Run(scenario, contender, events, dataset.endpoint_count, figures, stats, problems)
    print(f"    {_describe(run)}", flush=True)
    for problem in problems:
        print(f"    {problem}", flush=True)
    if contender != "baseline":
        run.notes.append(_packing(run))
        print(f"    {run.notes[-1]}", flush=True)
    return run


def _packing(run: Run) -> str:
    """Requests answered against the fewest that can carry the events, 100 to a request."""
    fewest = math.ceil(run.events / EVENTS_PER_REQUEST)
    verdict = "exact" if run.requests == fewest else f"{run.requests - fewest:+,} ({run.requests / fewest - 1:+.2%})"
    return f"packing: {run.requests:,} requests for ceil({run.events:,} / 100) = {fewest:,}: {verdict}"


def _emulator_cpu_s() -> float:
    """CPU seconds the emulator subprocess (a child of this process) has used so far."""
    import psutil

    for child in psutil.Process().children():
        if "airflow_provider_pinpoint.emulator" in " ".join(child.cmdline()):
            times = child.cpu_times()
            return times.user + times.system
    return 0.0


def _request_times(results: Path) -> tuple[list[float], float]:
    """When each answered request was sent, in seconds after the first, sorted, and the first as a Unix
    time: from the loader's results table (``sent_at`` of its rows, in milliseconds)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(results, columns=["request_id", "sent_at"]).filter(pc.is_valid(pc.field("request_id")))
    first_sent = table.group_by("request_id").aggregate([("sent_at", "min")])["sent_at_min"]
    ms = np.sort(first_sent.cast("int64").to_numpy())
    return (((ms - ms[0]) / 1000).tolist(), ms[0] / 1000) if len(ms) else ([], float("nan"))


def scenario_faults(scenario: str, args) -> dict:
    if scenario in ("throughput", "cli"):
        return {"latency_ms": args.sizes.latency_ms, "rate_limit": None, "validate": False}
    if scenario.startswith("rate"):
        return {"latency_ms": 0, "rate_limit": float(scenario.removeprefix("rate")), "validate": False}
    return {"latency_ms": 0, "rate_limit": None, "validate": False}


def _describe(run: Run) -> str:
    f = run.figures
    text = (
        f"{run.events_per_s:,.0f} events/s, {run.cpu_us_per_event:.1f} µs CPU/event, "
        f"peak RSS {f['peak_rss_mb']:,.0f} MB, wall {f['wall_s']:.1f} s, "
        f"duplicates {run.emulator['events_duplicated']}"
    )
    text += (
        f", emulator CPU {f['emulator_cpu_s'] * 1e6 / run.events:.1f} µs/event"
        f", load average {f['load_average'][0]:.1f} -> {f['load_average'][1]:.1f}"
        + (
            ", start-up included"
            if f.get("startup_included")
            else f", start-up and imports {f['startup_cpu_s']:.1f} s CPU (not counted"
            + ("" if run.contender == "baseline" or f.get("first_call") else "; the loader's first-use ones included")
            + ")"
        )
    )
    throttled = run.emulator["faults"].get("rate_limit", 0)
    if throttled:
        text += f", 429s {throttled}"
    return text


def _generate(work_dir: Path, name: str, events: int, endpoints: int, args, head: int = 0):
    import datagen

    started = time.perf_counter()
    dataset = datagen.generate(
        work_dir / name,
        events=events,
        endpoints=endpoints,
        event_attributes=args.event_attributes,
        endpoint_attributes=args.endpoint_attributes,
        head=head,
        seed=args.seed,
    )
    print(f"  data: {events:,} events / {endpoints:,} endpoints in {time.perf_counter() - started:.1f} s", flush=True)
    return dataset


def run_scenarios(args) -> tuple[list[Run], dict | None]:
    """Every scenario asked for; returns the runs, and ``stages.py``'s figures if that scenario ran."""
    from airflow_provider_pinpoint.emulator import run_emulator

    global PYCACHE
    sizes: Sizes = args.sizes
    runs: list[Run] = []
    stages = None
    with (
        tempfile.TemporaryDirectory(prefix="pinpoint-bench-") as tmp,
        run_emulator(validate=False, subprocess=True) as emu,
    ):
        work_dir = Path(tmp)
        PYCACHE = None if args.cold_bytecode else work_dir / "pycache"
        args.startup = _startup(emu, work_dir)
        for scenario in args.scenarios:
            print(f"[{scenario}]", flush=True)
            if scenario == "throughput":
                runs += _throughput(emu, work_dir, args, scenario, sizes.events, sizes.endpoints, sizes.baseline_events)
            elif scenario == "cli":
                runs += _throughput(
                    emu,
                    work_dir,
                    args,
                    scenario,
                    sizes.cli_events,
                    sizes.cli_endpoints,
                    sizes.cli_baseline_events,
                    with_endpoints=False,
                )
            elif scenario.startswith("rate"):
                runs.append(_rate(emu, work_dir, args, scenario))
            elif scenario == "memory":
                for events in sizes.memory_sizes:
                    dataset = _generate(work_dir, f"memory-{events}", events, events // 10, args)
                    runs.append(
                        _contend(
                            emu,
                            "loader",
                            scenario,
                            dataset,
                            work_dir,
                            rps=UNLIMITED_RPS,
                            args=args,
                            events=events,
                            tag=f"-{events}",
                        )
                    )
                    (work_dir / f"results-{scenario}-loader-{events}.parquet").unlink(missing_ok=True)
            elif scenario == "stages":
                stages = _stages(work_dir, args)
            elif scenario == "sync":
                args.sync_figures = _sync(work_dir, args)
            elif scenario == "kinesis":
                import kinesis_sink

                sizes_k = kinesis_sink.QUICK if args.quick else kinesis_sink.Sizes()
                args.kinesis = kinesis_sink.run(emu, work_dir / "kinesis", sizes_k, args.seed)
    return runs, stages


def _startup(emu, work_dir: Path) -> dict:
    """``pinpoint-load`` on 100 events, CPU seconds of its whole process: first with no compiled bytecode
    (as this environment runs it when it says PYTHONDONTWRITEBYTECODE), then twice with the harness's
    bytecode cache (the first run fills it). Warms the cache for the runs that follow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_pinpoint.quotas import DEFAULT_MAX_IN_FLIGHT

    events = work_dir / "startup.parquet"
    pq.write_table(pa.table({"EndpointId": [f"ep-{i % 10}" for i in range(100)], "EventType": ["view"] * 100}), events)
    global PYCACHE
    keep, figures = PYCACHE, {}
    for i, (name, cache) in enumerate((("cold", None), ("fill", keep), ("warm", keep))):
        PYCACHE = cache
        if name != "cold" and cache is None:
            break
        emu.reset()
        emu.configure(latency_ms=0, rate_limit=None, validate=False)
        spec = {
            "app": "bench-startup",
            "events": str(events),
            "url": emu.url,
            "rps": UNLIMITED_RPS,
            "max_in_flight": DEFAULT_MAX_IN_FLIGHT,
            "results": str(work_dir / f"results-startup-{i}.parquet"),
        }
        figures[name] = _run_cli(spec)["cpu_s"]
    PYCACHE = keep
    text = f"pinpoint-load on 100 events: {figures['cold']:.2f} s CPU with no compiled bytecode"
    if "warm" in figures:
        text += f", {figures['warm']:.2f} s with it cached (the runs below: {'cached' if keep else 'not cached'})"
    print(f"[start-up] {text}", flush=True)
    figures["note"] = text
    return figures


def _throughput(
    emu,
    work_dir: Path,
    args,
    scenario: str,
    events: int,
    endpoints: int,
    baseline_events: int,
    *,
    with_endpoints: bool = True,
) -> list[Run]:
    """The baseline (on a prefix), the loader in a child, and for ``cli`` the ``pinpoint-load`` command."""
    head = min(baseline_events, events)
    dataset = _generate(work_dir, scenario, events, endpoints, args, head=head)
    runs = []
    contenders = [c for c in args.contenders if c != "cli" or scenario == "cli"]
    for round_ in range(args.repeat):  # interleaved, so that a busy moment weighs on every contender alike
        for contender in contenders:
            baseline = contender == "baseline"
            run = _contend(
                emu,
                contender,
                scenario,
                dataset,
                work_dir,
                rps=0 if baseline else UNLIMITED_RPS,
                args=args,
                events=head if baseline else events,
                with_endpoints=with_endpoints,
                tag=f"-{round_}" if round_ else "",
            )
            if baseline and head < events:
                run.notes.insert(0, f"baseline ran on the first {head:,} of {events:,} events")
            if not with_endpoints:
                run.notes.insert(0, "events only, no endpoints table")
            if args.repeat > 1:
                run.notes.insert(0, f"round {round_ + 1} of {args.repeat}")
            runs.append(run)
    return runs


def _rate(emu, work_dir: Path, args, scenario: str) -> Run:
    """The loader at the emulator's limit: rate held, sent times per request, wall time against requests / rate."""
    limit = float(scenario.removeprefix("rate"))
    events = int(limit * EVENTS_PER_REQUEST * args.sizes.rate_seconds)
    dataset = _generate(work_dir, scenario, events, max(1, events // 10), args)
    run = _contend(emu, "loader", scenario, dataset, work_dir, rps=limit, args=args, events=events)
    wall = run.figures["wall_s"]
    overall = run.requests / wall
    times, first_sent = _request_times(Path(run.figures["summary"]["results"]))
    span = times[-1] if times else 0.0
    sustained = (len(times) - 1) / span if span else float("nan")
    run.series = {"limit": limit, "sent_s": [round(t, 3) for t in times]}
    run.notes.append(
        f"limit {limit:g} req/s: {sustained:.1f} req/s sustained ({sustained / limit:.0%}; "
        f"{len(times)} requests from first to last send over {span:.1f} s), "
        f"{overall:.1f} req/s over the whole call ({overall / limit:.0%}, {wall:.1f} s)"
    )
    print(f"    {run.notes[-1]}", flush=True)
    ideal = run.requests / limit
    run.figures["wall_over_ideal"] = wall / ideal
    run.notes.append(
        f"wall {wall:.2f} s against {run.requests:,} requests / {limit:g} req/s = {ideal:.2f} s: "
        f"{wall / ideal:.3f}x (target <= {TARGET_RATE_WALL}x: {_verdict(wall / ideal <= TARGET_RATE_WALL)}); "
        f"{first_sent - run.figures['started_at']:.2f} s from the call to the first send, "
        f"{run.figures['ended_at'] - first_sent - span:.2f} s from the last send to the return"
    )
    print(f"    {run.notes[-1]}", flush=True)
    return run


def _stages(work_dir: Path, args) -> dict:
    """``stages.py`` in a child, its figures read back from the JSON it writes."""
    sizes: Sizes = args.sizes
    out = work_dir / "stages.json"
    command = [
        sys.executable,
        str(HERE / "stages.py"),
        *("--events", str(sizes.stages_events), "--endpoints", str(sizes.stages_endpoints)),
        *("--repeat", str(sizes.stages_repeat), "--json", str(out)),
    ]
    load_before = os.getloadavg()[0]
    process = subprocess.run(command, capture_output=True, text=True, env=_child_env(), cwd=HERE)
    if process.returncode != 0:
        raise RuntimeError(f"stages.py failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
    stages = json.loads(out.read_text())
    stages["load_average"] = (load_before, os.getloadavg()[0])
    for line in process.stdout.splitlines():
        print(f"    {line}", flush=True)
    return stages


def _sync(work_dir: Path, args) -> dict:
    """``sync.py`` in a child (it starts its own emulator and children); its lines printed, its figures returned."""
    out = work_dir / "sync.json"
    command = [sys.executable, str(HERE / "sync.py"), "--endpoints", str(args.sizes.sync_endpoints), "--json", str(out)]
    process = subprocess.run(command, capture_output=True, text=True, env=_child_env(), cwd=HERE)
    if process.returncode != 0:
        raise RuntimeError(f"sync.py failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
    for line in process.stdout.splitlines():
        print(f"    {line}", flush=True)
    return json.loads(out.read_text())


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(runs: list[Run], stages: dict | None, args) -> str:
    lines = [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {_machine()}; code: {_code_version()}",
        f"command: {_command(args)}",
        "",
        "| scenario | contender | events | events/s (wall) | client CPU µs/event | peak RSS MB | requests | delivered "
        "| dup | emulator CPU µs/event | load avg | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for run in runs:
        delivered = "no" if any(n.startswith("DELIVERY") for n in run.notes) else "all"
        lines.append(
            f"| {run.scenario} | {run.contender} | {run.events:,} | {run.events_per_s:,.0f} | "
            f"{run.cpu_us_per_event:.1f} | {run.figures['peak_rss_mb']:,.0f} | {run.requests:,} | {delivered} | "
            f"{run.emulator['events_duplicated']} | {run.figures['emulator_cpu_s'] * 1e6 / run.events:.1f} | "
            f"{run.figures['load_average'][0]:.1f}->{run.figures['load_average'][1]:.1f} | {'; '.join(run.notes)} |"
        )
    lines.append("")
    if getattr(args, "startup", None):
        lines.append(args.startup["note"])
    lines.append(
        "client CPU µs/event: the work only for baseline and loader (start-up and imports excluded), "
        "everything from process start to exit for cli."
    )
    base, loader = (
        [r for r in runs if r.scenario == "throughput" and r.contender == c] for c in ("baseline", "loader")
    )
    if base and loader:
        eps = statistics.median(r.events_per_s for r in loader) / statistics.median(r.events_per_s for r in base)
        cpu = statistics.median(r.cpu_us_per_event for r in base) / statistics.median(
            r.cpu_us_per_event for r in loader
        )
        lines.append(
            f"throughput ratio loader/baseline: {eps:.1f}x events/s, {cpu:.1f}x less CPU per event"
            + (f" (medians of {len(loader)} rounds)" if len(loader) > 1 else "")
        )
    lines += _cli_targets(runs, args)
    memory = [r for r in runs if r.scenario == "memory"]
    if len(memory) >= 2:
        small, large = memory[0], memory[-1]
        peaks = ", ".join(f"{r.figures['peak_rss_mb']:,.0f} MB on {r.events:,}" for r in memory)
        lines.append(
            f"memory: peak RSS {peaks} events "
            f"({large.figures['peak_rss_mb'] / small.figures['peak_rss_mb']:.2f}x from smallest to largest)"
        )
    if stages:
        per_event = ", ".join(f"{name} {value:.1f}" for name, value in stages["per_event_us"].items())
        lines.append(
            f"stages ({stages['events']:,} events / {stages['endpoints']:,} endpoints, lowest of "
            f"{stages['repeat']}, load avg {stages['load_average'][0]:.1f}->{stages['load_average'][1]:.1f}): "
            f"client CPU µs/event: {per_event}"
        )
    if getattr(args, "kinesis", None):
        import kinesis_sink

        lines += kinesis_sink.report(args.kinesis)
    return "\n".join(lines)


def _cli_targets(runs: list[Run], args) -> list[str]:
    """The cli scenario's figures against issue 18's targets, from this one run (medians over ``--repeat``)."""
    of = {c: [r for r in runs if r.scenario == "cli" and r.contender == c] for c in ("baseline", "loader", "cli")}
    base, loader, cli = of["baseline"], of["loader"], of["cli"]
    rounds = max(len(v) for v in of.values())
    median = f" (medians of {rounds} rounds)" if rounds > 1 else ""

    def eps(group: list[Run]) -> float:
        return statistics.median(r.events_per_s for r in group)

    def cpu(group: list[Run]) -> float:
        return statistics.median(r.cpu_us_per_event for r in group)

    def seconds(group: list[Run], name: str) -> float:
        return statistics.median(r.figures[name] for r in group)

    lines = []
    if cli and base:
        ratio = eps(cli) / eps(base)
        lines.append(
            f"cli: pinpoint-load {eps(cli):,.0f} events/s (start-up included) against the baseline's "
            f"{eps(base):,.0f}: {ratio:.1f}x (target >= {TARGET_CLI_RATIO:g}x: "
            f"{_verdict(ratio >= TARGET_CLI_RATIO)}){median}"
        )
        # With max_in_flight requests in flight and the emulator holding each one latency_ms, sending
        # alone takes at least this long, whatever the client's CPU: the ratio's ceiling at this setting.
        requests = math.ceil(cli[-1].events / EVENTS_PER_REQUEST)
        floor_s = math.ceil(requests / args.max_in_flight) * args.sizes.latency_ms / 1000
        if floor_s:
            lines.append(
                f"cli: at --max-in-flight {args.max_in_flight} and {args.sizes.latency_ms:g} ms latency the "
                f"{requests:,} requests take at least {floor_s:.2f} s: at most "
                f"{cli[-1].events / floor_s / eps(base):.1f}x the baseline with no start-up at all "
                f"(the CLI took {seconds(cli, 'wall_s'):.2f} s)"
            )
    if cli:
        lines.append(
            f"cli: {cpu(cli):.1f} µs client CPU/event, start-up included (target <= {TARGET_CLI_CPU_US:g}: "
            f"{_verdict(cpu(cli) <= TARGET_CLI_CPU_US)}); peak RSS {seconds(cli, 'peak_rss_mb'):,.0f} MB; "
            f"wall {seconds(cli, 'wall_s'):.2f} s{median}"
        )
    if loader:
        text = (
            f"cli data in-process (load_events in a child): {eps(loader):,.0f} events/s, {cpu(loader):.1f} µs/event "
            f"(target <= {TARGET_INPROCESS_CPU_US:g}: {_verdict(cpu(loader) <= TARGET_INPROCESS_CPU_US)})"
        )
        if cli:
            extra = seconds(cli, "cpu_s") - seconds(loader, "cpu_s")
            wall = seconds(cli, "wall_s") - seconds(loader, "wall_s")
            text += (
                f"; the CLI process costs {extra:.2f} s CPU and {wall:.2f} s wall more (start-up, imports, exit; "
                f"the child's start-up was {seconds(loader, 'startup_cpu_s'):.2f} s CPU)"
            )
        lines.append(text + median)
    for group in (loader, cli):
        if group:
            run = group[-1]
            fewest = math.ceil(run.events / EVENTS_PER_REQUEST)
            lines.append(
                f"cli packing ({run.contender}): {run.requests:,} requests against ceil(events / 100) = {fewest:,} "
                f"(target: equal: {_verdict(all(r.requests == fewest for r in group))})"
            )
    return lines


def write_json(path: Path, runs: list[Run], stages: dict | None, args, load_average: tuple) -> None:
    """Everything the charts need, so that they can be redrawn without rerunning (``charts.py``)."""
    data = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": _machine(),
        "code": _code_version(),
        "command": _command(args),
        "load_average": load_average,
        "runs": [
            {
                "scenario": r.scenario,
                "contender": r.contender,
                "events": r.events,
                "endpoints": r.endpoints,
                "events_per_s": r.events_per_s,
                "cpu_us_per_event": r.cpu_us_per_event,
                "requests": r.requests,
                "figures": {**r.figures, "summary": _without_paths(r.figures.get("summary"))},
                "emulator": r.emulator,
                "notes": r.notes,
                "series": r.series,
            }
            for r in runs
        ],
        "stages": stages,
        "startup": getattr(args, "startup", None),
        "kinesis": getattr(args, "kinesis", None),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def _command(args) -> str:
    """The command as run, with absolute paths cut to their last part: they belong to one machine."""
    return " ".join(["benchmarks/run.py", *(Path(a).name if os.path.isabs(a) else a for a in args.argv)])


def _without_paths(summary: dict | None) -> dict | None:
    if not isinstance(summary, dict) or "results" not in summary:
        return summary
    return {**summary, "results": Path(str(summary["results"])).name}


def _code_version() -> str:
    """The commit measured, and whether the package had uncommitted changes (figures then belong to no commit)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "airflow_provider_pinpoint"],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} with uncommitted changes to the package" if dirty else commit


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory_gb:.0f} GB RAM, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small inputs, every scenario, a few minutes")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated of {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--contenders", default="baseline,loader,cli", help="throughput and cli scenarios: baseline,loader,cli"
    )
    parser.add_argument("--events", type=int, help="throughput: events (default 1,000,000)")
    parser.add_argument("--endpoints", type=int, help="throughput: endpoints (default 100,000)")
    parser.add_argument("--baseline-events", type=int, help="throughput: baseline runs on this prefix (default 50,000)")
    parser.add_argument("--cli-events", type=int, help="cli: events (default 200,000)")
    parser.add_argument("--cli-endpoints", type=int, help="cli: endpoints (default 20,000)")
    parser.add_argument("--cli-baseline-events", type=int, help="cli: baseline runs on this prefix (default 20,000)")
    parser.add_argument("--latency-ms", type=float, help="throughput and cli: emulator latency (default 20)")
    parser.add_argument("--rate-seconds", type=float, help="rate scenarios: planned duration (default 32)")
    parser.add_argument("--memory-sizes", help="memory: event counts, smallest first (default 500000,5000000)")
    parser.add_argument("--stages-events", type=int, help="stages: events (default 200,000)")
    parser.add_argument("--stages-endpoints", type=int, help="stages: endpoints (default 20,000)")
    parser.add_argument("--stages-repeat", type=int, help="stages: runs, the lowest kept per stage (default 3)")
    parser.add_argument("--sync-endpoints", type=int, help="sync: endpoints of the daily sync (default 200,000)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="throughput and cli: rounds of every contender, interleaved (default 1)"
    )
    from airflow_provider_pinpoint.quotas import DEFAULT_MAX_IN_FLIGHT

    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT,
        help=f"the loader's max_in_flight (default: the loader's, {DEFAULT_MAX_IN_FLIGHT})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--event-attributes", type=int, default=3, help="Attributes.* columns per event (default 3)")
    parser.add_argument(
        "--endpoint-attributes", type=int, default=2, help="list Attributes.* columns per endpoint (default 2)"
    )
    parser.add_argument("--profile", help="write the loader's cProfile stats next to this path, per scenario")
    parser.add_argument("--markdown", help="also write the report table to this file")
    parser.add_argument(
        "--out", default=str(HERE / "results"), help="where bench.json and the charts go (default benchmarks/results)"
    )
    parser.add_argument("--no-charts", action="store_true", help="write neither bench.json nor the charts")
    parser.add_argument(
        "--first-call",
        action="store_true",
        help="count the loader's first-use imports and its once-a-process service model read in its figures "
        "(default: they are start-up, as the baseline's imports are)",
    )
    parser.add_argument(
        "--cold-bytecode",
        action="store_true",
        help="children compile every module they import, if the environment says PYTHONDONTWRITEBYTECODE "
        "(default: they share a bytecode cache, as an installed package has)",
    )
    args = parser.parse_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return 0

    sizes = Sizes(**vars(QUICK)) if args.quick else Sizes()
    for name in (
        "events",
        "endpoints",
        "baseline_events",
        "cli_events",
        "cli_endpoints",
        "cli_baseline_events",
        "stages_events",
        "stages_endpoints",
        "stages_repeat",
        "sync_endpoints",
        "latency_ms",
        "rate_seconds",
    ):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    if args.memory_sizes:
        sizes.memory_sizes = tuple(int(n) for n in args.memory_sizes.split(","))
    args.sizes = sizes
    args.argv = argv
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.contenders = [c for c in args.contenders.split(",") if c]
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")

    started = time.perf_counter()
    load_before = os.getloadavg()
    runs, stages = run_scenarios(args)
    text = report(runs, stages, args)
    print()
    print(text)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if not args.no_charts:
        import charts

        out = Path(args.out)
        write_json(out / "bench.json", runs, stages, args, (load_before, os.getloadavg()))
        for written in charts.draw(out / "bench.json", out):
            print(f"wrote {written}")
    return 1 if any(n.startswith("DELIVERY") for r in runs for n in r.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
