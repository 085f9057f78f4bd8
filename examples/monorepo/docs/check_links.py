"""Fail when a page links to a page that does not exist."""

import re
import sys
from pathlib import Path

LINK = re.compile(r"\]\(([^)#:]+\.md)\)")


def broken(folder: Path) -> list[str]:
    return [
        f"{page.name} -> {target}"
        for page in sorted(folder.glob("*.md"))
        for target in LINK.findall(page.read_text())
        if not (folder / target).is_file()
    ]


if __name__ == "__main__":
    problems = broken(Path(sys.argv[1] if len(sys.argv) > 1 else "pages"))
    print("\n".join(problems) or "all links resolve")
    sys.exit(1 if problems else 0)
