# ruff: noqa: PT009 (unittest, so the tests run on a plain python3)
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from greeting import greet


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(greet("Ada"), "Hello, Ada.")

    def test_excited(self):
        self.assertEqual(greet("Ada", excited=True), "Hello, Ada!")

    def test_blank_name(self):
        self.assertEqual(greet("  "), "Hello, stranger.")


if __name__ == "__main__":
    unittest.main()
