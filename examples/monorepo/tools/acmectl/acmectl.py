"""acmectl: look up orders from the command line."""

from __future__ import annotations

import argparse
import sys

VERSION = "0.3.0"


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="acmectl", description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version")
    order = commands.add_parser("order-url", help="the API address of an order")
    order.add_argument("order_id")
    order.add_argument("--api", default="http://127.0.0.1:8080")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "version":
        print(f"acmectl {VERSION}")
    else:
        print(f"{args.api.rstrip('/')}/orders/{args.order_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
