"""Progress output: a redrawn line for people, periodic log lines for task logs, nothing when turned off."""

from __future__ import annotations

import io
import logging

import pytest
from upath import UPath

from airflow_provider_pinpoint.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line_with_events_per_second():
    screen = Terminal()
    meter = Progress(stream=screen, redraw_s=0.0)
    meter.update(accepted=150, events_accepted=120)
    meter.update(rejected=3)
    meter.close()
    text = screen.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "153 rows: 150 accepted, 3 rejected, 0 failed" in text and "events/s" in text


def test_a_log_gets_log_lines_and_no_carriage_returns(caplog):
    stream = io.StringIO()
    meter = Progress(stream=stream, log_every_s=0.0)
    with caplog.at_level(logging.INFO, logger="airflow_provider_pinpoint.progress"):
        meter.update(accepted=10, events_accepted=10)
        meter.close()
    assert stream.getvalue() == ""
    assert len(caplog.records) == 2 and "10 accepted" in caplog.records[-1].getMessage()


def test_log_mode_logs_even_on_a_terminal(caplog):
    screen = Terminal()
    meter = Progress(enabled="log", stream=screen, log_every_s=0.0)
    with caplog.at_level(logging.INFO, logger="airflow_provider_pinpoint.progress"):
        meter.update(accepted=5, events_accepted=5)
        meter.close()
    assert screen.getvalue() == ""
    assert len(caplog.records) == 2 and "5 accepted" in caplog.records[-1].getMessage()


def test_disabled_progress_shows_nothing(caplog):
    screen = Terminal()
    meter = Progress(enabled=False, stream=screen, redraw_s=0.0)
    with caplog.at_level(logging.INFO, logger="airflow_provider_pinpoint.progress"):
        meter.update(accepted=1)
        meter.close()
    assert screen.getvalue() == "" and not caplog.records


def test_with_a_known_total_the_line_is_a_bar():
    screen = Terminal()
    meter = Progress(stream=screen, redraw_s=0.0)
    meter.total = 400
    meter.update(accepted=100, events_accepted=90)
    assert "[######..................]  25% of 400 | " in screen.getvalue()


def test_with_a_known_total_the_line_says_rows_per_second_and_the_time_left():
    meter = Progress(enabled=False)
    meter.total = 10_000
    meter.update(accepted=900, rejected=100, events_accepted=800)
    line = meter.line(meter._started + 20)
    assert "10% of 10,000 | 3 min 00 s left | 1,000 rows: 900 accepted" in line
    assert "50 rows/s, 40 events/s | 20 s" in line
    meter.update(accepted=9_000)
    assert "left" not in meter.line(meter._started + 40)


def test_a_dry_run_counts_rows_checked():
    meter = Progress(enabled=False, dry_run=True)
    meter.total = 100
    meter.update(accepted=40)
    meter.update(rejected=10)
    line = meter.line(meter._started + 5)
    assert "50% of 100 | 5 s left | 50 rows checked: 40 valid, 10 rejected | 10 rows/s | 5 s" in line
    assert "accepted" not in line and "events/s" not in line


def test_a_phase_gets_a_line_when_it_starts_and_when_it_ends(caplog):
    screen = Terminal()
    with Progress(stream=screen).phase("writing the results table"):
        assert screen.getvalue() == "writing the results table ...\n"
    assert screen.getvalue().endswith("writing the results table: done in 0 s\n")
    with caplog.at_level(logging.INFO, logger="airflow_provider_pinpoint.progress"):
        with Progress(enabled="log").phase("writing the results table"):
            pass
    assert [r.getMessage() for r in caplog.records] == [
        "progress: writing the results table ...",
        "progress: writing the results table: done in 0 s",
    ]
    silent = Terminal()
    with Progress(enabled=False, stream=silent).phase("writing the results table"):
        pass
    assert silent.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (59.4, "59 s"), (65, "1 min 05 s"), (3600 * 2 + 7 * 60 + 3, "2 h 07 min")]
)
def test_durations_read_like_a_clock(seconds, text):
    from airflow_provider_pinpoint.progress import duration

    assert duration(seconds) == text


@pytest.mark.filterwarnings("ignore:UPath 'dir' filesystem not explicitly implemented")
def test_rows_are_counted_up_front_where_that_is_cheap(tmp_path):
    import pandas as pd

    from airflow_provider_pinpoint.progress import count_rows

    frame = pd.DataFrame({"EndpointId": ["a", "b", "c"]})
    frame.to_parquet(tmp_path / "part-1.parquet")
    frame.to_parquet(tmp_path / "part-2.parquet")
    frame.to_csv(tmp_path / "events.csv")
    assert count_rows(frame) == 3
    assert count_rows(tmp_path / "part-1.parquet") == 3
    assert count_rows(str(tmp_path)) == 6
    # A path object's footers are read through its own filesystem (here rooted at tmp_path).
    rooted = UPath("dir://", path=str(tmp_path), target_protocol="file")
    assert count_rows(rooted / "part-1.parquet") == 3
    assert count_rows(tmp_path / "events.csv") is None
