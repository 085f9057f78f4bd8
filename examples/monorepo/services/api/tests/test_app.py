# ruff: noqa: PT009 (unittest, so the tests run on a plain python3)
import json
import sys
import threading
import unittest
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app


class RouteTest(unittest.TestCase):
    def test_health(self):
        self.assertEqual(app.route("/health"), (200, {"status": "ok", "version": app.VERSION}))

    def test_unknown_order(self):
        self.assertEqual(app.route("/orders/42")[0], 404)


class ServerTest(unittest.TestCase):
    def test_serves_an_order_over_http(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), app.Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/orders/1001"
            with urllib.request.urlopen(url, timeout=5) as response:
                self.assertEqual(json.load(response)["item"], "widget")
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    unittest.main()
