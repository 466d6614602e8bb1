from __future__ import annotations

import pytest

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import (
    apply_mapping,
    classify,
    families,
    fixed_fields,
    looks_like_data,
    nearest_names,
    table_mapping,
)
from airflow_provider_pinpoint.prepare.read import read_table


def test_endpoint_fixed_fields_are_the_import_job_names():
    assert set(fixed_fields("endpoints")) == {
        "Id", "Address", "ChannelType", "EndpointStatus", "OptOut", "EffectiveDate", "RequestId",
        "Demographic.AppVersion", "Demographic.Locale", "Demographic.Make", "Demographic.Model",
        "Demographic.ModelVersion", "Demographic.Platform", "Demographic.PlatformVersion", "Demographic.Timezone",
        "Location.City", "Location.Country", "Location.Latitude", "Location.Longitude", "Location.PostalCode",
        "Location.Region", "User.UserId",
    }  # fmt: skip
    assert families("endpoints") == ("Attributes.", "Metrics.", "User.UserAttributes.")


def test_event_fixed_fields_are_the_convention_names():
    assert set(fixed_fields("events")) == {
        "EndpointId", "EventId", "EventType", "Timestamp", "AppPackageName", "AppTitle", "AppVersionCode",
        "ClientSdkVersion", "SdkName", "Session.Id", "Session.StartTimestamp", "Session.StopTimestamp",
        "Session.Duration",
    }  # fmt: skip
    assert families("events") == ("Attributes.", "Metrics.")


def test_endpoint_attributes_are_multi_valued_and_event_attributes_are_not():
    assert classify("Attributes.tags", "endpoints").multi_valued
    assert classify("User.UserAttributes.plan", "endpoints").multi_valued
    assert not classify("Attributes.tags", "events").multi_valued


def test_classify_gives_role_and_key():
    metric = classify("Metrics.price.eur", "events")
    assert (metric.role, metric.key, metric.numeric) == ("metric", "price.eur", True)
    assert classify("Location.Latitude", "endpoints").numeric
    assert classify("User.UserAttributes.plan", "endpoints").role == "user_attribute"
    assert classify("_source_row", "events").role == "bookkeeping"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("Attributes.", "events"), ("User.UserAttributes.plan", "events"), ("Id", "events"), ("id", "endpoints")],
)
def test_classify_refuses_names_outside_the_convention(name, kind):
    assert classify(name, kind) is None


def test_nearest_names_prefers_a_fixed_field_then_the_families():
    assert nearest_names("EndpointID", "events") == ["EndpointId"]
    assert set(nearest_names("price", "events")) == {"Attributes.price", "Metrics.price"}
    assert nearest_names("Attribute.plan", "endpoints")[0] == "Attributes.plan"


def test_table_mapping_tells_a_shared_mapping_from_a_per_table_one():
    assert table_mapping({"ts": "Timestamp"}, "events") == ({"ts": "Timestamp"}, False)
    per_table = {"events": {"ts": "Timestamp"}, "endpoints": {"uid": "Id"}}
    assert table_mapping(per_table, "endpoints") == ({"uid": "Id"}, True)
    assert table_mapping(None, "events") == ({}, False)


def test_mapping_renames_and_drops_columns():
    targets = apply_mapping(
        ["uid", "ts", "EventType", "junk"], "events", {"uid": "EndpointId", "ts": "Timestamp", "junk": None}, where="f"
    )
    assert targets == ["EndpointId", "Timestamp", "EventType", None]


def test_per_table_mapping_naming_a_missing_column_is_an_error_naming_the_file():
    with pytest.raises(InputError, match=r"^events\.csv: column_mapping names 'ts', which the events input does not"):
        apply_mapping(["EventType"], "events", {"events": {"ts": "Timestamp"}}, where="events.csv")


def test_shared_mapping_may_name_columns_of_the_other_table():
    assert apply_mapping(["Id"], "endpoints", {"ts": "Timestamp"}, where="endpoints.csv") == ["Id"]


def test_mapping_onto_an_unknown_field_is_an_error():
    with pytest.raises(
        InputError, match=r"^events\.csv: .*does not have: 'uid' -> 'EndpointID' \(nearest EndpointId\)"
    ):
        apply_mapping(["uid"], "events", {"uid": "EndpointID"}, where="events.csv")


def test_shared_mapping_onto_a_name_of_neither_table_is_an_error_even_for_an_absent_column():
    with pytest.raises(InputError, match="'x' -> 'Nope'"):
        apply_mapping(["Id"], "endpoints", {"x": "Nope"}, where="endpoints.csv")


def test_unknown_columns_are_listed_with_the_nearest_convention_names():
    with pytest.raises(InputError) as caught:
        apply_mapping(["EndpointId", "Evnt_Type", "price"], "events", None, where="events.csv")
    message = str(caught.value)
    assert message.startswith("events.csv: unknown events columns 'Evnt_Type', 'price'")
    assert "nearest EventType" in message and "Metrics.price" in message
    assert "column_mapping={'Evnt_Type': None}" in message
    assert "\n" not in message


def test_unknown_columns_of_the_other_table_suggest_the_tables_are_swapped():
    with pytest.raises(InputError, match="is this the endpoints table"):
        apply_mapping(["Id", "ChannelType"], "events", None, where="x.csv")


def test_mapping_values_must_be_names_or_none():
    with pytest.raises(InputError, match="keys and values must be column names"):
        apply_mapping(["a"], "events", {"a": 3}, where="x.csv")


@pytest.mark.parametrize(
    "name",
    [
        "user0001@example.com",
        "+15550104471",
        "0612345678",
        "+33 6 12 34 56 78",
        "a1b2c3d4" * 8,
        "9f86d081884c7d65" * 4,
        "https://hooks.example.com/pinpoint",
        "www.example.org/hook",
    ],
)
def test_values_read_as_column_names_look_like_data(name):
    assert looks_like_data(name)


@pytest.mark.parametrize(
    "name", ["EndpointId", "Attributes.plan_2024", "user_id", "Metrics.price", "ep-0001", "EMAIL", "col1234"]
)
def test_ordinary_column_names_do_not_look_like_data(name):
    assert not looks_like_data(name)


def test_a_headerless_csv_is_reported_without_quoting_its_addresses():
    first_row = ["ep-1", "EMAIL", "user0001@example.com", "+15550104471"]
    with pytest.raises(InputError) as caught:
        apply_mapping(first_row, "endpoints", None, where="endpoints.csv")
    message = str(caught.value)
    assert message.startswith("endpoints.csv: 2 columns that look like data, not names: is the header line missing?")
    assert "'ep-1'" in message
    assert "example.com" not in message and "5550104471" not in message


def test_a_headerless_csv_of_custom_endpoints_does_not_quote_their_urls(tmp_path):
    path = tmp_path / "endpoints.csv"
    path.write_text("ep-1,CUSTOM,https://hooks.example.com/pinpoint?key=abc\nep-2,CUSTOM,www.example.org/hook\n")
    with pytest.raises(InputError) as caught:
        read_table(path, kind="endpoints")
    message = str(caught.value)
    assert "1 column that looks like data, not a name: is the header line missing?" in message
    assert "example" not in message


def test_a_missing_mapped_column_lists_the_columns_without_values():
    with pytest.raises(InputError) as caught:
        apply_mapping(["Id", "user0001@example.com"], "endpoints", {"endpoints": {"uid": "Id"}}, where="e.csv")
    message = str(caught.value)
    assert "its columns are 'Id' and 1 column that looks like data, not a name" in message
    assert "example.com" not in message
