"""A small OpenID provider on loopback for the console's login: discovery, JWKS, an authorization
endpoint that signs in one configured user at once (no form), and a token endpoint that checks
the authorization code, the redirect URI, the client and the PKCE verifier (S256) before it
answers with an ID token and an access token (RS256 JWTs carrying realm roles)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from forge_core.testing.http import JsonHandler


class OidcStandIn:
    def __init__(self, client_id: str = "forge-api") -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user = {"sub": "carol", "roles": ["viewer"]}
        self.codes: dict[str, dict[str, str]] = {}
        self.requests: list[dict[str, str]] = []
        provider = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._reply(200, {
                        "issuer": provider.url, "jwks_uri": f"{provider.url}/jwks",
                        "authorization_endpoint": f"{provider.url}/authorize",
                        "token_endpoint": f"{provider.url}/token",
                        "code_challenge_methods_supported": ["S256"],
                    })
                elif url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.key.public_key()))
                    self._reply(200, {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
                elif url.path == "/authorize":
                    provider.requests.append(query)
                    if query.get("client_id") != provider.client_id or query.get("code_challenge_method") != "S256":
                        self._reply(400, {"error": "invalid_request"})
                        return
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    self.send_response(302)
                    back = urlencode({"code": code, "state": query["state"]})
                    self.send_header("Location", f"{query['redirect_uri']}?{back}")
                    self.end_headers()
                else:
                    self._reply(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                asked = provider.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if (
                    self.path != "/token" or asked is None or form.get("grant_type") != "authorization_code"
                    or form.get("redirect_uri") != asked["redirect_uri"] or form.get("client_id") != provider.client_id
                ):
                    self._reply(400, {"error": "invalid_grant"})
                elif challenge != asked["code_challenge"]:
                    self._reply(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                else:
                    self._reply(200, {
                        "access_token": provider.token(), "id_token": provider.token(), "token_type": "Bearer",
                        "expires_in": 300,
                    })

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url, "aud": self.client_id, "sub": self.user["sub"], "iat": now, "exp": now + 300,
            "realm_access": {"roles": self.user["roles"]},
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
