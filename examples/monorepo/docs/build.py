"""Build the documentation site as a tar.gz archive of the pages."""

import sys
import tarfile
from pathlib import Path


def main(pages: str, target: str) -> None:
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as archive:
        for page in sorted(Path(pages).glob("*.md")):
            archive.add(page, arcname=f"site/{page.name}")
    print(out)


if __name__ == "__main__":
    main(*(sys.argv[1:] or ["pages", "dist/site.tar.gz"]))
