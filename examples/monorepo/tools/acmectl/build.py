"""Build acmectl as a single-file executable (a zipapp) with the standard library only."""

import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(target: str) -> None:
    out = HERE / target
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        shutil.copy(HERE / "acmectl.py", Path(staging) / "acmectl.py")
        zipapp.create_archive(staging, out, interpreter="/usr/bin/env python3", main="acmectl:main")
    print(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist/acmectl.pyz")
