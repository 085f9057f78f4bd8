"""Build the documentation site: the pages, copied into the site folder (emptied first).

The artifact is that folder; the exec producer archives it reproducibly (same pages, same digest).
"""

import shutil
import sys
from pathlib import Path


def main(pages: str, target: str) -> None:
    out = Path(target)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for page in sorted(Path(pages).glob("*.md")):
        shutil.copyfile(page, out / page.name)
    print(out)


if __name__ == "__main__":
    main(*(sys.argv[1:] or ["pages", "dist/site"]))
