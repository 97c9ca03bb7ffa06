"""An OAuth issuer's key set on loopback, and access tokens signed with its key (RS256)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.loopback import LoopbackServer

ISSUER = "https://auth.example.test"


@dataclass
class Issuer:
    key: rsa.RSAPrivateKey
    jwks_url: str

    def token(self, audience: str, **claims: Any) -> str:
        """A valid access token for `audience` (the MCP URL), with these claims added."""
        now = int(time.time())
        body = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


@contextmanager
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    with LoopbackServer(Starlette(routes=[Route("/jwks.json", jwks)])) as server:
        yield Issuer(key, f"{server.url}/jwks.json")
