"""A small MNIST-like data set in CNTK's text format, generated (no download): digits drawn as seven-segment
strokes, shifted, thickened and noised at random, 28 x 28 pixels 0-255.

    python make_mnist_like.py OUTPUT_DIR [TRAIN_SAMPLES] [TEST_SAMPLES]

writes OUTPUT_DIR/Train-28x28_cntk_text.txt and Test-28x28_cntk_text.txt, the files the Batch AI quickstart
uploads to its `mnist_cntk` directory. Standard library only; the same seed gives the same files.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SIZE = 28
# Segments a-g of a seven-segment display as (row0, col0, row1, col1) on a 20 x 12 glyph box.
SEGMENTS = {
    "a": (0, 0, 0, 11),
    "b": (0, 11, 9, 11),
    "c": (10, 11, 19, 11),
    "d": (19, 0, 19, 11),
    "e": (10, 0, 19, 0),
    "f": (0, 0, 9, 0),
    "g": (9, 0, 9, 11),
}
DIGITS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]


def image(digit: int, rng: random.Random) -> list[int]:
    pixels = [[0.0] * SIZE for _ in range(SIZE)]
    top, left = 4 + rng.randint(-2, 2), 8 + rng.randint(-3, 3)
    slant = rng.uniform(-0.15, 0.15)
    width = rng.choice((1, 2))
    for seg in DIGITS[digit]:
        r0, c0, r1, c1 = SEGMENTS[seg]
        for t in range(21):
            r = r0 + (r1 - r0) * t / 20
            c = c0 + (c1 - c0) * t / 20 + slant * (10 - r)
            for dr in range(width + 1):
                for dc in range(width + 1):
                    y, x = int(top + r + dr), int(left + c + dc)
                    if 0 <= y < SIZE and 0 <= x < SIZE:
                        pixels[y][x] = rng.uniform(180, 255)
    out = []
    for row in pixels:
        for v in row:
            v = v + rng.gauss(0, 20) if v else max(0.0, rng.gauss(0, 15))
            out.append(max(0, min(255, int(v))))
    return out


def write(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w") as f:
        for i in range(count):
            digit = i % 10
            labels = " ".join("1" if d == digit else "0" for d in range(10))
            features = " ".join(map(str, image(digit, rng)))
            f.write(f"|labels {labels} |features {features}\n")


def main() -> None:
    out = Path(sys.argv[1])
    train = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    test = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2018)
    write(out / "Train-28x28_cntk_text.txt", train, rng)
    write(out / "Test-28x28_cntk_text.txt", test, rng)
    print(f"wrote {train} training and {test} test samples to {out}")


if __name__ == "__main__":
    main()
