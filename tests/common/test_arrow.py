"""Arrow idioms shared by every stage."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from airflow_provider_pinpoint.common.arrow import repeats


def test_repeats_marks_every_occurrence_after_a_values_first() -> None:
    values = pa.array(["b", "a", "b", None, "a", None, "c"])
    assert repeats(values).tolist() == [False, False, True, False, True, True, False]


def test_repeats_takes_numpy_hashes_and_empty_input() -> None:
    assert repeats(np.array([7, 7, 3], dtype=np.uint64)).tolist() == [False, True, False]
    assert repeats(pa.array([], pa.string())).tolist() == []
