"""The state's files: which part a file belongs to."""

from __future__ import annotations

import pytest

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.state import StateFiles


@pytest.mark.parametrize("part", ["main.pending", "shard-1.pending", "x.PENDING"])
def test_a_part_named_as_another_parts_pending_file_is_refused(tmp_path, part):
    # Part "main.pending" would write main.pending.parquet: part main's pending file.
    with pytest.raises(InputError, match="state_part may not end in '.pending'"):
        StateFiles(str(tmp_path), application_id="app", part=part)


@pytest.mark.parametrize("part", ["main", "shard-1", "pending", "a.pending.b", "x.pendings"])
def test_other_part_names_are_taken(tmp_path, part):
    files = StateFiles(str(tmp_path), application_id="app", part=part)
    assert files.own("endpoints").endswith(f"/{part}.parquet")
    assert files.own("endpoints", pending=True).endswith(f"/{part}.pending.parquet")


def test_a_part_removes_its_own_leftovers_only(tmp_path):
    main = StateFiles(str(tmp_path), application_id="app", part="main")
    dotted = StateFiles(str(tmp_path), application_id="app", part="main.eu")
    main.fs.makedirs(main.endpoints_dir, exist_ok=True)
    main.fs.makedirs(main.events_dir, exist_ok=True)
    own = [
        f"{main.own('endpoints')}.0123abcd.tmp",
        f"{main.own('endpoints', pending=True)}.89abcdef.tmp",
        f"{main.own('events')}.00000000.tmp",
    ]
    others = [
        f"{dotted.own('endpoints')}.0123abcd.tmp",  # main.eu.parquet...: part main.eu's, being written
        f"{dotted.own('events', pending=True)}.0123abcd.tmp",
        main.own("endpoints"),  # the part's own file stays
        f"{main.own('endpoints')}.not-a-token.tmp",
    ]
    for path in own + others:
        with open(path, "wb") as f:
            f.write(b"x")
    main.remove_leftovers()
    assert [main.fs.exists(path) for path in own] == [False] * len(own)
    assert [main.fs.exists(path) for path in others] == [True] * len(others)
