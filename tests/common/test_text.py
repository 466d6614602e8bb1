from __future__ import annotations

import pytest

from airflow_provider_pinpoint.common.text import first_line, scrubbed


@pytest.mark.parametrize(
    "address",
    [
        "someone@example.com",
        "https://user:secret@hooks.example.com/x?a=b",
        "+1 (555) 010-4471",
        "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad",
    ],
)
def test_addresses_are_scrubbed_from_library_messages(address):
    assert scrubbed(f"Could not convert '{address}' with type str") == "Could not convert '<value>' with type str"


def test_ordinary_words_and_short_numbers_are_kept():
    text = "In CSV column #4: conversion error to int64 in row 12345"
    assert scrubbed(text) == text


def test_an_error_line_never_carries_the_password_of_a_url():
    error = OSError("cannot open https://reader:s3cr3t@data.example.com/events.csv: timed out")
    assert first_line(error) == "cannot open https://data.example.com/events.csv: timed out"
