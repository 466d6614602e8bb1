"""Each contender runs in a process of its own: what its environment holds and how its figures come back.

The child gets test credentials only and no shared AWS config, so nothing of this machine's AWS
setup is used; it prints its figures as JSON on one line after ``prefix``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def without_aws_setup(env: dict[str, str]) -> dict[str, str]:
    """``env`` with test credentials in place of any the machine has, and no shared AWS config."""
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return env


def run(script: Path, spec: dict, env: dict[str, str], cwd: Path, prefix: str, name: str) -> dict:
    """Run ``script --child SPEC`` and return the figures it printed; ``name`` says which run failed."""
    process = subprocess.run(
        [sys.executable, str(script), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    for line in process.stdout.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix) :])
    raise RuntimeError(f"{name} run failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
