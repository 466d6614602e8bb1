"""Fixtures shared by every test area: one emulator per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient, run_emulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorClient]:
    """An emulator in a thread of the test process, on a free loopback port, accepting any app id."""
    with run_emulator() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: EmulatorClient) -> EmulatorClient:
    """The session's emulator with no records, no statistics and no faults."""
    emulator_server.reset()
    return emulator_server
