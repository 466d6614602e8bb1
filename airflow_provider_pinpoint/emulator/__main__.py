"""``python -m airflow_provider_pinpoint.emulator``: the same as ``pinpoint-emulator``."""

from __future__ import annotations

import sys

from airflow_provider_pinpoint.emulator.cli import main

sys.exit(main())
