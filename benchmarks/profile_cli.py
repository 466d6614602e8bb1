"""Where the time of one ``pinpoint-load`` run goes: a cProfile of the whole command, imports included.

The cli scenario's load by default: 200,000 events of 20,000 endpoints with given event ids, events
only, the emulator in its own process with 20 ms latency. The command runs in a child that enables
cProfile (on each thread's own CPU clock, in every thread the loader starts) before it imports
anything of the package, then calls ``airflow_provider_pinpoint.cli.main`` with the same arguments
``pinpoint-load`` gets in the harness. The child's CPU time comes from ``wait4``, so what the
profile cannot see (the interpreter's own start before the first line runs) is the difference.

Printed: the fixed costs of a run (imports, client creation, thread start, the given-id uniqueness
check, compaction, Parquet writing, ...), each as CPU seconds and as µs per event, then the
functions with the most CPU of their own. cProfile slows Python-heavy code down (about 1.5-2x
here), so read the shares, not the absolute figures; the harness's cli scenario gives those.

    .venv/bin/python benchmarks/profile_cli.py [--events 200000 --endpoints 20000] [--out out/cli.prof]
    .venv/bin/python -m pstats out/cli.prof
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (label, a piece of the file name, the function name): cumulative CPU, all threads, in the profile.
FIXED = (
    ("imports (all `import`s the run makes)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("boto3 session + client creation", "botocore/session.py", "create_client"),
    ("thread start (Thread.start, calling side)", "threading.py", "start"),
    ("reading the input (Parquet)", "prepare/read/parquet.py", "read_parquet"),
    ("given-id uniqueness check", "prepare/validation/event_rules.py", "_check_duplicate_event_ids"),
    ("results: compaction (whole)", "results/store.py", "compact"),
    ("results: Parquet writing inside compaction", "pyarrow/parquet/core.py", "write_batch"),
    ("results: journal writes (per answer)", "results/journal.py", "add_outcomes"),
)
PHASES = (
    ("prepare: read, validate, reshape, pack, bodies", "prepare/flow.py", "prepare"),
    ("sending: one request, in the worker threads", "sending/engine.py", "_deliver"),
    ("  of which botocore put_events (sign, send, read)", "botocore/client.py", "_make_api_call"),
    ("the whole CLI main()", "airflow_provider_pinpoint/cli.py", "main"),
)


def _child(out: str, argv: list[str]) -> None:
    from run import _profiled  # the harness's own all-threads profiler

    def run() -> int:
        from airflow_provider_pinpoint import cli

        return cli.main(argv)

    sys.exit(_profiled(run, out))


def _matching(stats: pstats.Stats, file_part: str, name: str | None) -> tuple[float, int]:
    """Cumulative CPU seconds and calls of the functions matching; with no name, the module's top-level
    entry points (functions of that file not called from the same file)."""
    total, calls = 0.0, 0
    for (filename, _, function), (_, ncalls, _, cumtime, callers) in stats.stats.items():
        if file_part not in filename:
            continue
        if name is not None and function != name:
            continue
        if name is None and any(file_part in caller[0] for caller in callers):
            continue
        total += cumtime
        calls += ncalls
    return total, calls


def summarise(path: Path, events: int, cpu_s: float | None = None, top: int = 25) -> str:
    stats = pstats.Stats(str(path))
    profiled = stats.total_tt
    lines = [f"profiled CPU, all threads: {profiled:.2f} s ({profiled * 1e6 / events:.1f} µs/event)"]
    if cpu_s is not None:
        lines.append(
            f"process CPU (wait4), under the profiler: {cpu_s:.2f} s; not seen by the profiler (interpreter "
            f"start, the profiler's own cost, exit): {cpu_s - profiled:.2f} s"
        )
    lines += ["", "| cost | CPU s | µs/event | calls |", "|---|---:|---:|---:|"]
    for label, file_part, name in (*FIXED, *PHASES):
        seconds, calls = _matching(stats, file_part, name)
        lines.append(f"| {label} | {seconds:.3f} | {seconds * 1e6 / events:.2f} | {calls:,} |")
    lines += ["", f"functions with the most CPU of their own (top {top}):", ""]
    lines += ["| own CPU s | µs/event | calls | function |", "|---:|---:|---:|---|"]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (filename, line, function), (_, ncalls, tottime, _, _) in rows:
        where = (
            filename.split("site-packages/")[-1].split("/lib/python3.11/")[-1].split("airflow_provider_pinpoint/")[-1]
        )
        lines.append(f"| {tottime:.3f} | {tottime * 1e6 / events:.2f} | {ncalls:,} | {where}:{line}({function}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--endpoints", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--out", default="out/cli.prof", help="the merged cProfile stats (default out/cli.prof)")
    parser.add_argument(
        "--cold-bytecode",
        action="store_true",
        help="compile every module on import, if the environment says PYTHONDONTWRITEBYTECODE (default: a "
        "bytecode cache filled by one unprofiled run first, as an installed package has)",
    )
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    import datagen
    import run

    from airflow_provider_pinpoint.emulator import run_emulator

    with (
        tempfile.TemporaryDirectory(prefix="pinpoint-profile-") as tmp,
        run_emulator(validate=False, latency_ms=args.latency_ms, subprocess=True) as emu,
    ):
        dataset = datagen.generate(Path(tmp), events=args.events, endpoints=args.endpoints)
        Path(args.out).resolve().parent.mkdir(parents=True, exist_ok=True)
        if not args.cold_bytecode:
            run.PYCACHE = Path(tmp) / "pycache"
            run._startup(emu, Path(tmp))  # fills the cache
            emu.reset()
            emu.configure(latency_ms=args.latency_ms, rate_limit=None, validate=False)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(Path(args.out).resolve()),
            *("--application-id", "bench-profile", "--events", str(dataset.events)),
            *("--results", f"{tmp}/results.parquet", "--endpoint-url", emu.url, "--region", "us-east-1"),
            *("--no-progress", "--requests-per-second", "1000000"),
        ]
        load = os.getloadavg()[0]
        wall = time.perf_counter()
        process = subprocess.Popen(command, env=run._child_env(), cwd=HERE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - wall
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("pinpoint-load under the profiler failed")
        stats = emu.stats()
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"\n{args.events:,} events / {args.endpoints:,} endpoints, events only, {args.latency_ms:g} ms latency; "
        f"{stats['requests']:,} requests; wall {wall:.2f} s; load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n"
    )
    print(summarise(Path(args.out), args.events, cpu, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
