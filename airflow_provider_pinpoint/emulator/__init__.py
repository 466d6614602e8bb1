"""A local Amazon Pinpoint PutEvents endpoint: validation, recording and fault injection.

Start it with ``pinpoint-emulator`` or, from Python, ``with run_emulator() as emu:``; inspect what
it accepted through :class:`EmulatorClient`.
"""

from __future__ import annotations

from airflow_provider_pinpoint.emulator.client import EmulatorClient
from airflow_provider_pinpoint.emulator.runner import run_emulator
from airflow_provider_pinpoint.emulator.server import Limits

__all__ = ["EmulatorClient", "Limits", "run_emulator"]
