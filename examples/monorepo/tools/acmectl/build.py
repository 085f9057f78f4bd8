"""Build acmectl as a single-file executable (a zipapp) with the standard library only.

Reproducible: the entries' times come from ``SOURCE_DATE_EPOCH`` (1980-01-01 without it), so the
same source builds the same bytes.
"""

import os
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EARLIEST = 315532800  # 1980-01-01, the earliest time a zip entry holds
MAIN = b"import sys\n\nimport acmectl\n\nsys.exit(acmectl.main())\n"


def main(target: str) -> None:
    out = HERE / target
    out.parent.mkdir(parents=True, exist_ok=True)
    when = time.gmtime(max(int(os.environ.get("SOURCE_DATE_EPOCH", EARLIEST)), EARLIEST))[:6]
    with out.open("wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w") as archive:
            for name, data in (("__main__.py", MAIN), ("acmectl.py", (HERE / "acmectl.py").read_bytes())):
                entry = zipfile.ZipInfo(name, date_time=when)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, data)
    out.chmod(0o755)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist/acmectl.pyz")
