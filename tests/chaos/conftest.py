"""Chaos fixtures: an emulator in its own process, seeded datasets, and the printed table of scenarios."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient, run_emulator
from tests.chaos.data import HEADER, TABLE, Dataset, make_dataset


@pytest.fixture(scope="session")
def chaos_emulator() -> Iterator[EmulatorClient]:
    """An emulator in a subprocess, so its CPU is not the loader's (the machine is small)."""
    with run_emulator(subprocess=True) as emu:
        yield emu


class _Datasets(dict):
    """Datasets by number of events, made on first use and shared by the scenarios of that size."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, events: int) -> Dataset:
        self[events] = make_dataset(self.factory.mktemp(f"chaos-{events}"), events, seed=events)
        return self[events]


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Dataset]:
    return _Datasets(tmp_path_factory)


def pytest_terminal_summary(terminalreporter) -> None:
    if not TABLE:
        return
    rows = [HEADER, *((str(cell) for cell in row) for row in TABLE)]
    rows = [tuple(row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    terminalreporter.section("fault scenarios")
    for row in rows:
        terminalreporter.line("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
