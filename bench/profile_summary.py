"""Summarise a `py-spy record --format raw` profile (collapsed stacks: `frame;frame;... count` per line):
the functions with the most samples, on the stack at all (inclusive) and on top of it (self).

    .venv/bin/python bench/profile_summary.py bench/out/profile-operator-500.txt [--top 30] [--match batchai]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
# `function (path/to/module.py:123)`: the line number is dropped so one function is one entry.
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")
# Paths shortened to the package: `kopf/...`, `json/...`, `batchai_operator/...`.
_PREFIX = re.compile(r"^.*/(?:site-packages|lib/python3\.\d+|operator)/")


@dataclass(frozen=True)
class Summary:
    total: int
    inclusive: Counter[str]
    self_: Counter[str]


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['fn']} ({_PREFIX.sub('', m['file'])})"


def summarize(lines: Iterable[str]) -> Summary:
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            continue
        count = int(m["count"])
        frames = [
            frame_name(f) for f in m["stack"].split(";") if f and not f.startswith(("thread ", "process "))
        ]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        self_[frames[-1]] += count
    return Summary(total, inclusive, self_)


def report(summary: Summary, top: int, match: str = "") -> str:
    def rows(counter: Counter[str]) -> list[str]:
        picked = [(n, c) for n, c in counter.most_common() if match in n][:top]
        return [f"  {100 * c / summary.total:5.1f}%  {n}" for n, c in picked]

    total = summary.total or 1
    summary = Summary(total, summary.inclusive, summary.self_)
    return "\n".join(
        [
            f"{total} samples",
            "inclusive (on the stack):",
            *rows(summary.inclusive),
            "self (on top):",
            *rows(summary.self_),
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--match", default="", help="only functions whose name or path contains this")
    args = ap.parse_args()
    print(report(summarize(args.profile.read_text().splitlines()), args.top, args.match))


if __name__ == "__main__":
    main()
