"""Regenerate the sample endpoints and events tables (seeded: the same files on every run).

    .venv/bin/python sample_data/make_sample_data.py [OUTPUT_DIR]

Writes, next to this script (or into OUTPUT_DIR):

- ``endpoints.parquet`` / ``endpoints.csv``: 240 endpoints covering every endpoint column of the
  convention. ``Attributes.interests`` is multi-valued: a list column in Parquet, the header repeated
  once per value in CSV. ``User.UserAttributes.plan`` is a one-value list in Parquet.
- ``events.parquet`` / ``events.csv``: 2,400 events covering every event column, over
  2026-11-23..25 UTC. About a tenth have no ``EventId`` (the loader derives one), two of those are
  identical rows; about half carry a ``Session``. In Parquet ``Timestamp`` is an Arrow UTC
  timestamp; in CSV every value is text.
- The 20 endpoints ``ep-0221`` .. ``ep-0240`` have no events; events of the endpoint ids
  ``ep-9001`` .. ``ep-9010`` have no endpoint row (they go with ``Endpoint: {}``).
- ``daily/events/date=YYYY-MM-DD/part-0.parquet`` and ``daily/endpoints/date=.../part-0.parquet``
  for 2026-11-23, -24 and -25: that day's valid events (timestamps inside the day) and the endpoints
  they refer to, for the daily example DAG. The deliberately invalid rows are left out there.

Deliberately invalid rows (data row numbers, the same in Parquet and CSV):

- endpoints row 5: ``Id`` is ``ep-0005$`` (``$`` is not allowed in an endpoint id)
- endpoints row 17: ``ChannelType`` is ``PIGEON``
- endpoints row 29: ``Location.Latitude`` is 123
- endpoints row 41: ``OptOut`` is ``MAYBE``
- endpoints row 53: ``Demographic.Locale`` is ``english`` (not ll_CC)
- events row 11: ``Attributes.sku`` is 201 characters (Pinpoint drops such events silently)
- events row 23: a ``Session`` with ``StartTimestamp`` but no ``Id``
- events row 35: no ``EventType``

No personal data: addresses are ``userNNNN@example.com``, ``+1555...`` numbers and made-up tokens.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261123
HERE = Path(__file__).resolve().parent
DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")
ENDPOINTS = 240
ENDPOINTS_WITH_EVENTS = 220
EVENTS = 2400
ORPHAN_ENDPOINT_IDS = [f"ep-{9001 + i}" for i in range(10)]

CHANNELS = ["EMAIL", "SMS", "APNS", "GCM", "VOICE", "CUSTOM", "IN_APP", "PUSH"]
INTERESTS = ["books", "cycling", "cooking", "films", "gardening", "music", "running", "travel"]
PLANS = ["free", "basic", "pro"]
PLACES = [  # city, region, country, postal code, latitude, longitude, timezone, locale
    ("Springfield", "IL", "US", "62701", 39.80, -89.64, "America/Chicago", "en_US"),
    ("Portland", "OR", "US", "97201", 45.52, -122.68, "America/Los_Angeles", "en_US"),
    ("Lyon", "ARA", "FR", "69001", 45.76, 4.83, "Europe/Paris", "fr_FR"),
    ("Leipzig", "SN", "DE", "04109", 51.34, 12.37, "Europe/Berlin", "de_DE"),
    ("Osaka", "27", "JP", "530-0001", 34.69, 135.50, "Asia/Tokyo", "ja_JP"),
    ("Recife", "PE", "BR", "50030-000", -8.05, -34.88, "America/Recife", "pt_BR"),
]
DEVICES = [
    ("Apple", "iPhone", "15,2", "ios", "17.4"),
    ("Google", "Pixel", "8", "android", "14"),
    ("Acme", "Web", "1", "web", "1"),
]
EVENT_TYPES = ["_session.start", "_session.stop", "page_view", "add_to_cart", "purchase", "_monetization.purchase"]
PAGES = ["/", "/search", "/cart", "/checkout", "/help"]

ENDPOINT_COLUMNS = [
    "Id", "Address", "ChannelType", "EndpointStatus", "OptOut", "EffectiveDate", "RequestId",
    "Demographic.AppVersion", "Demographic.Locale", "Demographic.Make", "Demographic.Model",
    "Demographic.ModelVersion", "Demographic.Platform", "Demographic.PlatformVersion", "Demographic.Timezone",
    "Location.City", "Location.Country", "Location.Latitude", "Location.Longitude", "Location.PostalCode",
    "Location.Region", "Attributes.interests", "Attributes.segment", "Metrics.lifetime_value",
    "Metrics.orders", "User.UserId", "User.UserAttributes.plan",
]  # fmt: skip
EVENT_COLUMNS = [
    "EndpointId", "EventId", "EventType", "Timestamp", "AppPackageName", "AppTitle", "AppVersionCode",
    "ClientSdkVersion", "SdkName", "Session.Id", "Session.StartTimestamp", "Session.StopTimestamp",
    "Session.Duration", "Attributes.page", "Attributes.sku", "Attributes.campaign", "Metrics.price",
    "Metrics.quantity",
]  # fmt: skip
LIST_COLUMNS = {"Attributes.interests", "User.UserAttributes.plan"}
ENDPOINT_TYPES = {
    "Location.Latitude": pa.float64(),
    "Location.Longitude": pa.float64(),
    "Metrics.lifetime_value": pa.float64(),
    "Metrics.orders": pa.float64(),
    "Attributes.interests": pa.list_(pa.string()),
    "User.UserAttributes.plan": pa.list_(pa.string()),
}
EVENT_TYPES_ARROW = {
    "Timestamp": pa.timestamp("ms", tz="UTC"),
    "Session.Duration": pa.int64(),
    "Metrics.price": pa.float64(),
    "Metrics.quantity": pa.float64(),
}

INVALID_ENDPOINT_ROWS = {5, 17, 29, 41, 53}
INVALID_EVENT_ROWS = {11, 23, 35}


def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def make_endpoints(rng: random.Random) -> list[dict]:
    rows = []
    for n in range(1, ENDPOINTS + 1):
        channel = CHANNELS[n % len(CHANNELS)]
        city, region, country, postal, lat, lon, tz, locale = PLACES[n % len(PLACES)]
        make, model, model_version, platform, platform_version = DEVICES[n % len(DEVICES)]
        if channel == "EMAIL":
            address = f"user{n:04d}@example.com"
        elif channel in ("SMS", "VOICE"):
            address = f"+1555010{n:04d}"
        else:
            address = f"token-{rng.getrandbits(64):016x}"
        sparse = n % 7 == 0  # some endpoints leave most optional fields empty
        rows.append(
            {
                "Id": f"ep-{n:04d}",
                "Address": address,
                "ChannelType": channel,
                "EndpointStatus": "INACTIVE" if n % 11 == 0 else "ACTIVE",
                "OptOut": "ALL" if n % 13 == 0 else "NONE",
                "EffectiveDate": None if sparse else iso(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=n)),
                "RequestId": None if sparse else f"req-{n:04d}",
                "Demographic.AppVersion": None if sparse else f"3.{n % 5}.0",
                "Demographic.Locale": locale,
                "Demographic.Make": None if sparse else make,
                "Demographic.Model": None if sparse else model,
                "Demographic.ModelVersion": None if sparse else model_version,
                "Demographic.Platform": platform,
                "Demographic.PlatformVersion": None if sparse else platform_version,
                "Demographic.Timezone": tz,
                "Location.City": None if sparse else city,
                "Location.Country": country,
                "Location.Latitude": None if sparse else round(lat + rng.uniform(-0.05, 0.05), 5),
                "Location.Longitude": None if sparse else round(lon + rng.uniform(-0.05, 0.05), 5),
                "Location.PostalCode": None if sparse else postal,
                "Location.Region": None if sparse else region,
                "Attributes.interests": sorted(rng.sample(INTERESTS, rng.randint(0, 3))) or None,
                "Attributes.segment": rng.choice(["new", "returning", "vip"]),
                "Metrics.lifetime_value": None if sparse else round(rng.uniform(0, 900), 2),
                "Metrics.orders": float(rng.randint(0, 40)),
                "User.UserId": f"user-{(n + 1) // 2:04d}",  # two endpoints per user
                "User.UserAttributes.plan": [rng.choice(PLANS)],
            }
        )
    rows[4]["Id"] = "ep-0005$"
    rows[16]["ChannelType"] = "PIGEON"
    rows[28]["Location.Latitude"] = 123.0
    rows[40]["OptOut"] = "MAYBE"
    rows[52]["Demographic.Locale"] = "english"
    return rows


def make_events(rng: random.Random, endpoint_ids: list[str]) -> list[dict]:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    rows = []
    for n in range(1, EVENTS + 1):
        endpoint_id = ORPHAN_ENDPOINT_IDS[n % 10] if n % 80 == 0 else endpoint_ids[n % ENDPOINTS_WITH_EVENTS]
        timestamp = start + timedelta(seconds=rng.randrange(3 * 86400), milliseconds=rng.randrange(1000))
        event_type = EVENT_TYPES[n % len(EVENT_TYPES)]
        in_session = n % 2 == 0
        duration = rng.randrange(1000, 1_800_000)
        session_start = timestamp - timedelta(milliseconds=rng.randrange(60_000))
        purchase = event_type in ("purchase", "_monetization.purchase")
        rows.append(
            {
                "EndpointId": endpoint_id,
                "EventId": None if n % 10 == 3 else f"evt-{n:05d}",
                "EventType": event_type,
                "Timestamp": timestamp,
                "AppPackageName": "com.example.shop",
                "AppTitle": "Example Shop",
                "AppVersionCode": f"3{n % 5}0",
                "ClientSdkVersion": "2.1.0",
                "SdkName": "example-sdk",
                "Session.Id": f"ses-{n // 4:05d}" if in_session else None,
                "Session.StartTimestamp": iso(session_start) if in_session else None,
                "Session.StopTimestamp": iso(session_start + timedelta(milliseconds=duration))
                if in_session and n % 4 == 0
                else None,
                "Session.Duration": duration if in_session and n % 4 == 0 else None,
                "Attributes.page": rng.choice(PAGES) if event_type == "page_view" else None,
                "Attributes.sku": f"SKU-{rng.randrange(10_000):05d}"
                if purchase or event_type == "add_to_cart"
                else None,
                "Attributes.campaign": "winter-sale" if n % 9 == 0 else None,
                "Metrics.price": round(rng.uniform(1, 250), 2) if purchase else None,
                "Metrics.quantity": float(rng.randint(1, 4)) if purchase or event_type == "add_to_cart" else None,
            }
        )
    rows[10]["Attributes.sku"] = "SKU-" + "x" * 197
    rows[22]["Session.Id"] = None
    rows[22]["Session.StartTimestamp"] = iso(rows[22]["Timestamp"])
    rows[34]["EventType"] = None
    rows[101] = dict(rows[100], EventId=None)  # two identical rows without an EventId
    rows[100]["EventId"] = None
    return rows


def write_parquet(rows: list[dict], columns: list[str], types: dict[str, pa.DataType], path: Path) -> None:
    arrays = [pa.array([row[c] for row in rows], types.get(c, pa.string())) for c in columns]
    pq.write_table(pa.table(arrays, names=columns), path, compression="zstd")


def csv_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_csv(rows: list[dict], columns: list[str], path: Path) -> None:
    """Multi-valued columns get one header per value, as many as the longest list needs."""
    widths = {c: max(1, max(len(row[c] or []) for row in rows)) if c in LIST_COLUMNS else 1 for c in columns}
    header = [c for c in columns for _ in range(widths[c])]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            cells = []
            for c in columns:
                if c in LIST_COLUMNS:
                    values = list(row[c] or [])
                    cells += values + [""] * (widths[c] - len(values))
                else:
                    cells.append(csv_text(row[c]))
            writer.writerow(cells)


def write_daily(out: Path, endpoints: list[dict], events: list[dict]) -> None:
    valid_endpoints = {row["Id"]: row for i, row in enumerate(endpoints, 1) if i not in INVALID_ENDPOINT_ROWS}
    valid_events = [row for i, row in enumerate(events, 1) if i not in INVALID_EVENT_ROWS]
    for day in DAYS:
        todays = sorted(
            (row for row in valid_events if row["Timestamp"].strftime("%Y-%m-%d") == day),
            key=lambda row: row["Timestamp"],
        )
        referenced = sorted({row["EndpointId"] for row in todays} & set(valid_endpoints))
        for table, rows, columns, types in (
            ("events", todays, EVENT_COLUMNS, EVENT_TYPES_ARROW),
            ("endpoints", [valid_endpoints[i] for i in referenced], ENDPOINT_COLUMNS, ENDPOINT_TYPES),
        ):
            directory = out / "daily" / table / f"date={day}"
            directory.mkdir(parents=True, exist_ok=True)
            write_parquet(rows, columns, types, directory / "part-0.parquet")


def main(out: Path = HERE) -> None:
    rng = random.Random(SEED)
    endpoints = make_endpoints(rng)
    events = make_events(rng, [f"ep-{n:04d}" for n in range(1, ENDPOINTS_WITH_EVENTS + 1)])
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(endpoints, ENDPOINT_COLUMNS, ENDPOINT_TYPES, out / "endpoints.parquet")
    write_csv(endpoints, ENDPOINT_COLUMNS, out / "endpoints.csv")
    write_parquet(events, EVENT_COLUMNS, EVENT_TYPES_ARROW, out / "events.parquet")
    write_csv(events, EVENT_COLUMNS, out / "events.csv")
    write_daily(out, endpoints, events)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
