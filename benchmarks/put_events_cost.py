"""Client CPU per event of one PutEvents request: boto3's generic path against RawPutEvents, both ways.

Both send the same 100-event requests to an emulator in its own process (validation off, so the
server is quick and its CPU is not ours). ``plain`` is ``client.put_events`` with the BatchItem as a
dict and botocore's parameter validation off, i.e. only the generic serializer and parser on top of
what the raw path does (``plain_validating``: the same with boto3's default parameter validation on);
``raw`` is :class:`RawPutEvents` through ``client.put_events`` (``direct=False``) with the body
already serialised, as the loader has it; ``direct`` is :class:`RawPutEvents` as the loader uses
it, sending straight through the client's signer and HTTP session (see ``sinks/direct_send.py``).
``raw_user_agent_rebuilt`` is ``raw`` with botocore building the User-Agent header twice per
request, as it does by default. All clients make one attempt per call, as the loader's do. The
paths take turns, ``--rounds`` times each, so a busy machine weighs on all of them alike; the
figures are the means over the rounds.
"""

from __future__ import annotations

import argparse
import json
import time

import boto3
import botocore.config

from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.sending.client import CLIENT_RETRIES
from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents

APP = "bench-app"


def batch_items(requests: int, endpoints_per_request: int = 50) -> list[dict]:
    """``requests`` BatchItem maps of 100 events each, shaped like the harness's generated data."""
    items = []
    for r in range(requests):
        batch: dict = {}
        for n in range(100):
            endpoint_id = f"ep-{r:05d}-{n % endpoints_per_request:03d}"
            entry = batch.setdefault(
                endpoint_id,
                {
                    "Endpoint": {
                        "ChannelType": "EMAIL",
                        "Address": f"user{r}-{n}@example.com",
                        "Demographic": {"Locale": "en_US", "Platform": "ios"},
                        "Location": {"Country": "US"},
                        "Attributes": {"interest_0": ["red", "blue"], "interest_1": ["north"]},
                        "Metrics": {"lifetime_value": 123.45},
                        "User": {"UserId": f"user-{r}-{n}"},
                    },
                    "Events": {},
                },
            )
            entry["Events"][f"ev-{r:05d}-{n:03d}"] = {
                "EventType": "purchase",
                "Timestamp": "2026-01-02T03:04:05.678Z",
                "Session": {"Id": f"s-{r}-{n}", "StartTimestamp": "2026-01-02T03:00:00.000Z"},
                "Attributes": {"tag_0": "red", "tag_1": "south", "tag_2": "alpha"},
                "Metrics": {"amount_0": 42.5},
            }
        items.append(batch)
    return items


def _client(url: str, parameter_validation: bool = False):
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(parameter_validation=parameter_validation, retries=dict(CLIENT_RETRIES)),
    )


def measure(url: str, requests: int, rounds: int = 2) -> dict[str, float]:
    """CPU and wall microseconds per event for each path, after a short warm-up (means over ``rounds``)."""
    batches = batch_items(requests)
    bodies = [json.dumps({"BatchItem": batch}, separators=(",", ":")).encode() for batch in batches]
    plain_client = _client(url)
    validating_client = _client(url, parameter_validation=True)
    raw = RawPutEvents(_client(url), direct=False)
    direct = RawPutEvents(_client(url))
    # The same path with botocore building the User-Agent twice per request, as before RawPutEvents kept it.
    rebuilt_client = _client(url)
    raw_rebuilt = RawPutEvents(rebuilt_client, direct=False)
    vars(rebuilt_client._user_agent_creator).pop("to_string", None)
    for batch, body in zip(batches[:5], bodies[:5], strict=True):
        plain_client.put_events(ApplicationId=APP, EventsRequest={"BatchItem": batch})
        validating_client.put_events(ApplicationId=APP, EventsRequest={"BatchItem": batch})
        raw.send(APP, body)
        direct.send(APP, body)
        raw_rebuilt.send(APP, body)
    if not direct.direct:
        raise SystemExit("the direct path was refused for a plain client: see sinks/direct_send.py")

    paths = (
        ("plain", lambda i: plain_client.put_events(ApplicationId=APP, EventsRequest={"BatchItem": batches[i]})),
        (
            "plain_validating",
            lambda i: validating_client.put_events(ApplicationId=APP, EventsRequest={"BatchItem": batches[i]}),
        ),
        ("raw_user_agent_rebuilt", lambda i: raw_rebuilt.send(APP, bodies[i])),
        ("raw", lambda i: raw.send(APP, bodies[i])),
        ("direct", lambda i: direct.send(APP, bodies[i])),
    )
    figures = {f"{name}_{kind}_us_per_event": 0.0 for name, _ in paths for kind in ("cpu", "wall")}
    events = requests * 100 * rounds
    for _ in range(rounds):
        for name, send in paths:
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(requests):
                send(i)
            figures[f"{name}_cpu_us_per_event"] += (time.process_time() - cpu) * 1e6 / events
            figures[f"{name}_wall_us_per_event"] += (time.perf_counter() - wall) * 1e6 / events
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="100-event requests per path and round (default 300)")
    parser.add_argument("--rounds", type=int, default=2, help="turns each path takes (default 2)")
    args = parser.parse_args(argv)
    with run_emulator(validate=False, subprocess=True) as emu:
        figures = measure(emu.url, args.requests, args.rounds)
    for key, value in figures.items():
        print(f"{key:36} {value:8.1f}")
    print(f"{'saved_cpu_us_per_event':36} {figures['plain_cpu_us_per_event'] - figures['raw_cpu_us_per_event']:8.1f}")
    direct, raw = figures["direct_cpu_us_per_event"], figures["raw_cpu_us_per_event"]
    print(f"{'direct_saved_cpu_us_per_event':36} {raw - direct:8.1f}")
    print(f"{'direct_cpu_share_of_raw':36} {direct / raw:8.2f}")


if __name__ == "__main__":
    main()
