"""maxWallClockTime durations: Batch AI's TimeSpan, the az CLI's timedelta text and ISO 8601."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchai_operator.api.duration import (
    DEFAULT_MAX_WALL_CLOCK_TIME,
    DURATION_PATTERN,
    parse_duration,
    to_seconds,
)

SCHEMA = re.compile(DURATION_PATTERN, re.ASCII)  # RE2 semantics: \d is [0-9]


def schema_accepts(text: str) -> bool:
    """What the CRD accepts: the `pattern` plus the CEL rule on maxWallClockTime."""
    return bool(SCHEMA.fullmatch(text)) and text != "P" and not text.endswith("T")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Batch AI / .NET TimeSpan: [d.]hh:mm:ss[.fffffff]
        ("7.00:00:00", timedelta(days=7)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("00:30:00", timedelta(minutes=30)),
        ("5:00:00", timedelta(hours=5)),
        ("0:00:01.5", timedelta(seconds=1.5)),
        ("0:00:00.1234567", timedelta(seconds=0.1234567)),
        ("365.00:00:00", timedelta(days=365)),
        # the az CLI's output (str(timedelta))
        ("7 days, 0:00:00", timedelta(days=7)),
        ("1 day, 2:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0:05:00", timedelta(minutes=5)),
        ("2 days, 23:59:59.999999", timedelta(days=2, hours=23, minutes=59, seconds=59.999999)),
        # ISO 8601, as the REST API
        ("P7D", timedelta(days=7)),
        ("P1W", timedelta(weeks=1)),
        ("P2W3D", timedelta(days=17)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT45S", timedelta(seconds=45)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("P1DT1H1M1S", timedelta(days=1, hours=1, minutes=1, seconds=1)),
    ],
)
def test_formats(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert schema_accepts(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "7d",
        "7 days",
        "1:2:3",
        "00:60",
        "1.2.03:00:00",
        "P1H",  # hours need the T
        "PT1D",
        "P-1D",
        "-1:00:00",
        "1 days 0:00:00",
        "7 Days, 0:00:00",
        "0:00:00.12345678",
        "forever",
        "\u0661:00:00",  # Arabic-Indic digit: Python's \d would take it, RE2's does not
    ],
)
def test_bad_formats(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    assert not schema_accepts(text)


def test_default_is_seven_days() -> None:
    assert parse_duration(DEFAULT_MAX_WALL_CLOCK_TIME) == timedelta(days=7)


@pytest.mark.parametrize(
    ("text", "seconds"), [("0:00:01.2", 2), ("0:00:01", 1), ("PT0.001S", 1), ("PT0S", 0), ("P7D", 604800)]
)
def test_to_seconds_rounds_up(text: str, seconds: int) -> None:
    assert to_seconds(text) == seconds


def test_surrounding_whitespace_is_tolerated_by_the_parser() -> None:
    assert parse_duration(" P1D\n") == timedelta(days=1)


durations = st.builds(
    timedelta,
    days=st.integers(0, 3000),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    microseconds=st.integers(0, 999_999),
)


def timespan(td: timedelta) -> str:
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if td.days:
        text = f"{td.days}.{text}"
    if td.microseconds:
        text += f".{td.microseconds:06d}"
    return text


def iso(td: timedelta) -> str:
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date = f"{td.days}D" if td.days else ""
    secs = f"{seconds}.{td.microseconds:06d}" if td.microseconds else str(seconds)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    if seconds or td.microseconds:
        time += f"{secs}S"
    if not date and not time:
        time = "0S"
    return "P" + date + (f"T{time}" if time else "")


@given(durations)
def test_timespan_round_trip(td: timedelta) -> None:
    text = timespan(td)
    assert parse_duration(text) == td
    assert schema_accepts(text)


@given(durations)
def test_cli_text_round_trip(td: timedelta) -> None:
    text = str(td)  # exactly what the az CLI printed (Python's timedelta)
    assert parse_duration(text) == td
    assert schema_accepts(text)


@given(durations)
def test_iso_round_trip(td: timedelta) -> None:
    text = iso(td)
    assert abs(parse_duration(text) - td) < timedelta(microseconds=1)
    assert schema_accepts(text)


@given(st.text(alphabet="0123456789PWDTHMS.:, ays", max_size=20))
def test_parser_and_schema_agree(text: str) -> None:
    """Whatever the CRD schema lets through, the operator can parse, and nothing else."""
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    stripped = text.strip() == text
    if stripped:
        assert parsed == schema_accepts(text), text
    elif schema_accepts(text):
        pytest.fail(f"schema accepted whitespace-padded {text!r}")
