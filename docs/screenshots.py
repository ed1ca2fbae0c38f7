"""Screenshots of each report section at 1400 and 800 px, for the README.

    PYTHONPATH=. python docs/screenshots.py REPORT.html [--out docs/report]

Renders REPORT.html in headless Chromium at each width, takes the whole page, cuts out every
section and writes ``OUT-<section>-<width>.png`` as a palette PNG (small files for git).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import render, screenshot

WIDTHS = (1400, 800)
COLOURS = 96  # palette size: plots are flat colours, so this keeps them faithful and small


def shoot(page: Path, out: Path, width: int) -> list[Path]:
    """Every section of `page` at `width` px, as ``{out}-{section}-{width}.png``."""
    seen = render(page, width)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        whole = screenshot(page, width, seen.height, Path(tmp) / "page.png")
        with Image.open(whole) as image:
            for section in seen.sections:
                box = section["box"]
                top, bottom = int(box["y"]) - 8, int(box["y"] + box["h"]) + 8
                part = image.crop((0, max(top, 0), width, min(bottom, image.height)))
                path = out.parent / f"{out.name}-{section['id']}-{width}.png"
                part.convert("RGB").quantize(COLOURS).save(path, optimize=True)
                written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/report"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        for path in shoot(args.page.resolve(), args.out, width):
            print(f"{path} {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
