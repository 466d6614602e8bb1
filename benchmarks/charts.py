"""The harness's charts, drawn from the ``bench.json`` that ``run.py`` writes: PNG, matplotlib's Agg backend.

- ``chart-throughput.png``: events/s of the baseline and the loader (in a child, and as the
  ``pinpoint-load`` command) per scenario, with the ratio to the baseline;
- ``chart-stages.png``: client CPU per event by stage (``stages.py``);
- ``chart-memory.png``: the loader's peak RSS against input size (the memory scenario);
- ``chart-rate.png``: requests sent per 1-second bucket over a run against the limit (rate scenarios).

A chart whose scenario did not run is not drawn (an older PNG of it is left as it was). Each chart
says when, on which commit and with which command its figures were measured. Redraw without rerunning:

    .venv/bin/python benchmarks/charts.py [benchmarks/results/bench.json] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from airflow_provider_pinpoint.quotas import DEFAULT_MAX_IN_FLIGHT  # noqa: E402

HERE = Path(__file__).resolve().parent
COLOURS = {"baseline": "#999999", "loader": "#1f77b4", "cli": "#ff7f0e"}
LABELS = {"baseline": "naive script (pandas iterrows + put_events)", "loader": "load_events", "cli": "pinpoint-load"}


def _footer(fig, data: dict) -> None:
    load = data.get("load_average") or [[0, 0, 0], [0, 0, 0]]
    fig.text(
        0.01,
        0.01,
        f"{data['date']}, code {data['code']}, load average {load[0][0]:.1f} -> {load[1][0]:.1f} on "
        f"{data['machine'].split(',')[1].strip()}\n"
        + "\n".join(textwrap.wrap(data["command"], 120, break_on_hyphens=False)),
        fontsize=7,
        color="#555555",
        va="bottom",
    )


def _save(fig, path: Path, data: dict) -> Path:
    _footer(fig, data)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _median_eps(runs: list[dict], scenario: str, contender: str) -> float | None:
    """Events/s of that contender in that scenario; the median over rounds (``run.py --repeat``)."""
    values = [r["events_per_s"] for r in runs if r["scenario"] == scenario and r["contender"] == contender]
    return statistics.median(values) if values else None


def throughput(data: dict, out: Path) -> Path | None:
    runs = [r for r in data["runs"] if r["scenario"] in ("throughput", "cli")]
    if not runs:
        return None
    scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    contenders = [c for c in ("baseline", "loader", "cli") if any(r["contender"] == c for r in runs)]
    fig, ax = plt.subplots(figsize=(8, 5))
    fig.subplots_adjust(bottom=0.22, top=0.88)
    width = 0.8 / len(contenders)
    for i, contender in enumerate(contenders):
        labelled = False
        for j, scenario in enumerate(scenarios):
            value = _median_eps(runs, scenario, contender)
            if value is None:
                continue
            x = j + (i - (len(contenders) - 1) / 2) * width
            label = None if labelled else LABELS[contender]
            labelled = True
            ax.bar(x, value, width, color=COLOURS[contender], label=label)
            base = _median_eps(runs, scenario, "baseline")
            text = f"{value:,.0f}"
            if base and contender != "baseline":
                text += f"\n{value / base:.1f}x"
            ax.annotate(text, (x, value), ha="center", va="bottom", fontsize=8)
    names = []
    for scenario in scenarios:
        loader = next(r for r in runs if r["scenario"] == scenario and r["contender"] != "baseline")
        extra = ", events only" if scenario == "cli" else ""
        names.append(f"{scenario}\n{loader['events']:,} events / {loader['endpoints']:,} endpoints{extra}")
    ax.set_xticks(range(len(scenarios)), names, fontsize=8)
    ax.set_ylabel("events/s (wall)")
    ax.set_ylim(0, max(r["events_per_s"] for r in runs) * 1.45)
    rounds = max(
        sum(1 for r in runs if r["scenario"] == s and r["contender"] == c) for s in scenarios for c in contenders
    )
    ax.set_title(
        "Loader against the naive script, 20 ms service latency\n(pinpoint-load: start-up included"
        + (f"; medians of {rounds} rounds)" if rounds > 1 else ")")
    )
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, out / "chart-throughput.png", data)


def stages(data: dict, out: Path) -> Path | None:
    st = data.get("stages")
    if not st:
        return None
    per_event = st["per_event_us"]
    names = list(per_event)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    fig.subplots_adjust(left=0.2, bottom=0.25, top=0.86)
    colours = ["#1f77b4"] * (len(names) - 1) + ["#ff7f0e"]
    y = range(len(names))[::-1]
    ax.barh(list(y), [per_event[n] for n in names], color=colours)
    for yi, name in zip(y, names, strict=True):
        ax.annotate(f" {per_event[name]:.1f}", (max(per_event[name], 0), yi), va="center", fontsize=8)
    ax.set_yticks(list(y), [("whole load_events" if n == "load_events" else n) for n in names])
    ax.axvline(20, color="red", linestyle="--", linewidth=1, label="target: 20 µs/event in-process")
    ax.set_xlabel("client CPU µs per event (lowest of the runs)")
    ax.set_title(
        f"Client CPU per event by stage, {st['events']:,} events / {st['endpoints']:,} endpoints\n"
        f"stages alone in one thread; the whole call with {st.get('max_in_flight', DEFAULT_MAX_IN_FLIGHT)} "
        "requests in flight"
    )
    ax.set_xlim(min(0, *per_event.values()), max(max(per_event.values()), 20) * 1.15)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, out / "chart-stages.png", data)


def memory(data: dict, out: Path) -> Path | None:
    runs = sorted((r for r in data["runs"] if r["scenario"] == "memory"), key=lambda r: r["events"])
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    fig.subplots_adjust(bottom=0.25, top=0.88)
    x = [r["events"] for r in runs]
    y = [r["figures"]["peak_rss_mb"] for r in runs]
    ax.plot(x, y, marker="o", color="#1f77b4")
    for xi, yi in zip(x, y, strict=True):
        ax.annotate(f"{yi:,.0f} MB", (xi, yi), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{n:,}" for n in x], fontsize=8)
    ax.minorticks_off()
    ax.set_ylim(0, max(y) * 1.25)
    ax.set_xlabel("events loaded (endpoints: a tenth of that)")
    ax.set_ylabel("peak RSS, MB")
    ax.set_title("Loader's peak memory against input size (load_events in a child)")
    return _save(fig, out / "chart-memory.png", data)


def rate(data: dict, out: Path) -> Path | None:
    runs = [r for r in data["runs"] if r["scenario"].startswith("rate") and r["series"].get("sent_s")]
    if not runs:
        return None
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.6 * len(runs) + 1), squeeze=False)
    fig.subplots_adjust(bottom=0.18 if len(runs) > 1 else 0.28, top=0.9, hspace=0.55)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        limit, sent = run["series"]["limit"], run["series"]["sent_s"]
        full = int(sent[-1])  # whole seconds from the first send; the last, partial second is left out
        counts = [0] * max(full, 1)
        for t in sent:
            if int(t) < len(counts):
                counts[int(t)] += 1
        ax.bar(range(len(counts)), counts, width=0.9, align="edge", color="#1f77b4", label="requests sent")
        ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"limit {limit:g} req/s")
        ax.set_ylim(0, max(max(counts), limit) * 1.25)
        ax.set_xlim(0, max(len(counts), 1))
        ax.set_ylabel("requests / s")
        wall = run["figures"].get("wall_over_ideal")
        ax.set_title(
            f"{run['scenario']}: {len(sent):,} requests over {sent[-1]:.1f} s"
            + (f"; wall time {wall:.3f}x requests / rate" if wall else ""),
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("seconds since the first request (1-second buckets, by sent_at in the results table)")
    fig.suptitle("Requests per second held against the emulator's limit")
    return _save(fig, out / "chart-rate.png", data)


def draw(json_path: Path, out: Path) -> list[Path]:
    data = json.loads(Path(json_path).read_text())
    out.mkdir(parents=True, exist_ok=True)
    drawn = [chart(data, out) for chart in (throughput, stages, memory, rate)]
    return [path for path in drawn if path is not None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default=str(HERE / "results" / "bench.json"))
    parser.add_argument("--out", help="directory for the PNGs (default: the JSON file's)")
    args = parser.parse_args(argv)
    for path in draw(Path(args.json), Path(args.out) if args.out else Path(args.json).parent):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
