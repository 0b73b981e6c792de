"""maxWallClockTime durations in the three spellings Batch AI users have in their files.

- Batch AI SDK / .NET TimeSpan: ``7.00:00:00`` ([d.]hh:mm:ss[.fff])
- the az CLI's output (Python timedelta str): ``7 days, 0:00:00`` or ``1 day, 2:03:04``
- ISO 8601 as in the REST API: ``P7D``, ``PT1H30M``, ``P1DT2H``

Hand-written because isodate and friends cover only ISO 8601; the other two are tiny regexes.
"""

from __future__ import annotations

import re
from datetime import timedelta

# re.ASCII: `\d` means [0-9], as in the RE2 pattern the apiserver checks (Python's `\d` would also
# take other Unicode digits). Numbers have bounded digits, so every accepted duration fits a timedelta and
# a Job's activeDeadlineSeconds (about 400,000 days at the most).
_TIMESPAN = re.compile(
    r"^(?:(?P<d>\d{1,5})\.)?(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?$", re.ASCII
)
_PYTHON = re.compile(
    r"^(?:(?P<d>\d{1,5}) days?, )?(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?$", re.ASCII
)
_ISO = re.compile(
    r"^P(?!$)(?:(?P<w>\d{1,4})W)?(?:(?P<d>\d{1,5})D)?"
    r"(?:T(?=\d)(?:(?P<h>\d{1,6})H)?(?:(?P<m>\d{1,8})M)?(?:(?P<s>\d{1,10}(?:\.\d{1,9})?)S)?)?$",
    re.ASCII,
)

# The same three spellings as one regex, for the CRD schema's `pattern` (so kubectl apply rejects a
# malformed duration before the operator sees it).
DURATION_PATTERN = (
    r"^((\d{1,5}\.)?\d{1,2}:\d{2}:\d{2}(\.\d{1,7})?"
    r"|(\d{1,5} days?, )?\d{1,2}:\d{2}:\d{2}(\.\d{1,6})?"
    r"|P(\d{1,4}W)?(\d{1,5}D)?(T(\d{1,6}H)?(\d{1,8}M)?(\d{1,10}(\.\d{1,9})?S)?)?)$"
)

DEFAULT_MAX_WALL_CLOCK_TIME = "7.00:00:00"


def parse_duration(text: str) -> timedelta:
    """Parse a Batch AI duration; raises ValueError naming the accepted formats."""
    text = text.strip()
    for rx in (_TIMESPAN, _PYTHON):
        m = rx.match(text)
        if m:
            frac = m.group("f") or "0"
            return timedelta(
                days=int(m.group("d") or 0),
                hours=int(m.group("h")),
                minutes=int(m.group("m")),
                seconds=int(m.group("s")) + float("0." + frac),
            )
    m = _ISO.match(text)
    if m and text not in ("P", "PT") and not text.endswith("T"):
        return timedelta(
            weeks=int(m.group("w") or 0),
            days=int(m.group("d") or 0),
            hours=int(m.group("h") or 0),
            minutes=int(m.group("m") or 0),
            seconds=float(m.group("s") or 0),
        )
    raise ValueError(
        f"invalid duration {text!r}: use Batch AI's '7.00:00:00', the CLI's '7 days, 0:00:00' "
        "or ISO 8601 'P7D'"
    )


def to_seconds(text: str) -> int:
    """Whole seconds, rounded up so a deadline is never shorter than asked."""
    td = parse_duration(text)
    whole = int(td.total_seconds())
    return whole if whole == td.total_seconds() else whole + 1
