"""Fixtures for the sink tests."""

from __future__ import annotations

import boto3
import botocore.handlers
import pytest


@pytest.fixture
def only_botocores_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients made in the test get botocore's own handlers only.

    Importing moto (its server fixture does, in the test process) adds its in-process mock to every
    botocore session made afterwards, which rightly keeps clients off the direct send path; a test
    about that path must not depend on whether an earlier test imported moto.
    """
    kept = [
        spec
        for spec in botocore.handlers.BUILTIN_HANDLERS
        if not (getattr(spec[1], "__module__", None) or type(spec[1]).__module__).startswith("moto.")
    ]
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", kept)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
