# ruff: noqa: PT009 (unittest, so the tests run on a plain python3)
import contextlib
import io
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import acmectl


class CliTest(unittest.TestCase):
    def run_cli(self, *argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = acmectl.main(list(argv))
        return code, out.getvalue().strip()

    def test_version(self):
        self.assertEqual(self.run_cli("version"), (0, f"acmectl {acmectl.VERSION}"))

    def test_order_url(self):
        self.assertEqual(self.run_cli("order-url", "7", "--api", "http://x/"), (0, "http://x/orders/7"))


if __name__ == "__main__":
    unittest.main()
