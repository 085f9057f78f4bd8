"""Build a source distribution of the library with the standard library only."""

import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(out: str) -> Path:
    sys.path.insert(0, str(HERE / "src"))
    from greeting import __version__

    target = HERE / out / f"greeting-{__version__}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as archive:
        archive.add(HERE / "src", arcname=f"greeting-{__version__}/src")
    print(target)
    return target


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist")
