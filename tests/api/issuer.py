"""A locally generated OIDC issuer on loopback: RSA keys, a discovery document and a JWKS.

Stands in for GitHub Actions' token issuer, for key rotation (which the OIDC mock cannot do), and
for Keycloak's token exchange (``POST /token``, RFC 8693), which answers with a token of its own
carrying ``exchange_roles`` as realm roles.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from forge_core.testing.http import JsonHandler

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class LocalIssuer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.jwks_fetches = 0
        self.exchange_client = ("forge-exchange", "exchange-s3cret")
        self.exchange_roles = ["developer"]
        self.exchanges: list[dict[str, str]] = []
        self.rotate()
        issuer = self

        class Handler(JsonHandler):

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                issuer.exchanges.append(form)
                client = (form.get("client_id"), form.get("client_secret"))
                if self.path != "/token" or client != issuer.exchange_client:
                    self._reply(401, {"error": "unauthorized_client"})
                elif form.get("grant_type") != TOKEN_EXCHANGE or not form.get("subject_token"):
                    self._reply(400, {"error": "invalid_request"})
                else:
                    roles = {"realm_access": {"roles": issuer.exchange_roles}}
                    token = issuer.token("forge-api", sub="github-actions", **roles)
                    self._reply(200, {"access_token": token, "expires_in": 300})

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = issuer.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self._reply(200, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rotate(self) -> str:
        """A new current key; the old ones leave the JWKS (as after a rotation)."""
        kid = uuid.uuid4().hex[:12]
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(
        self, audience: str, ttl: int = 300, key: rsa.RSAPrivateKey | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": audience,
            "sub": claims.pop("sub", "repo:acme/app:ref:refs/heads/main"),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            **claims,
        }
        signer = key or self.keys[self.kid]
        return jwt.encode(payload, signer, algorithm="RS256", headers={"kid": self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
