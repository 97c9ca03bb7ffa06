"""Who may call a server reachable over HTTP: static bearer tokens, or OAuth 2.1 access
tokens (JWTs) checked as a resource server.

Both plug into the SDK's `TokenVerifier`; the SDK answers 401 (with a pointer to the
protected-resource metadata) when `verify_token` returns None, and 403 when a required
scope is missing. Auth never applies to stdio: a local host spawns the server itself.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken

from mcp_imagegen.errors import ConfigError
from mcp_imagegen.server.principals import LOCAL_NAME, checked_name, derived_name

logger = logging.getLogger(__name__)

JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric algorithms only: a resource server holds no shared secret, and `none` or HS*
with a public key as the secret are classic forgeries."""
NAME_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
"""`name:` before a token in IMAGEGEN_AUTH_TOKENS (a token itself rarely has a colon)."""
JWKS_TTL_S = 600.0
JWKS_REFRESH_MIN_S = 30.0
"""An unknown key id refetches the JWKS, but not more often than this (a flood of forged
tokens must not become a flood of requests to the issuer)."""


@dataclass(frozen=True)
class StaticToken:
    """One accepted bearer token, the principal it stands for and any scopes it adds."""

    token: str
    name: str
    scopes: tuple[str, ...] = ()


def parse_token(text: str, where: str) -> StaticToken:
    """`TOKEN` or `name:TOKEN` (as in IMAGEGEN_AUTH_TOKENS)."""
    name, colon, rest = text.partition(":")
    if colon and rest and NAME_LIKE.match(name):
        return StaticToken(rest, _name(name, where))
    return StaticToken(text, derived_name(text))


def read_token_file(path: Path) -> list[StaticToken]:
    """One token per line: `TOKEN`, or `name TOKEN [scope ...]` (e.g. `alice TOKEN imagegen:admin`);
    blank lines and `#` comments are skipped."""
    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
    tokens = []
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"{path}, line {number}"
        if len(words) == 1:
            tokens.append(parse_token(words[0], where))
        else:
            tokens.append(StaticToken(words[1], _name(words[0], where), tuple(words[2:])))
    return tokens


def _name(name: str, where: str) -> str:
    try:
        return checked_name(name, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class StaticTokenVerifier:
    """Accepts any of a fixed set of bearer tokens, compared in constant time.

    A request's principal (`AccessToken.subject`) is its token's name, so logs, usage and
    rate limits tell people apart without ever showing a token.
    """

    def __init__(self, tokens: Sequence[StaticToken], *, scopes: Sequence[str], resource: str) -> None:
        if not tokens:
            raise ConfigError("no auth tokens configured")
        names: dict[str, str] = {}
        owners: dict[str, str] = {}
        for entry in tokens:
            if names.setdefault(entry.name, entry.token) != entry.token:
                raise ConfigError(f"two different auth tokens are both named {entry.name!r}")
            owner = owners.setdefault(entry.token, entry.name)
            if owner != entry.name:
                # Whoever sent it would be counted as the first name: their images, usage and budget.
                raise ConfigError(
                    f"one auth token is given under two names, {owner!r} and {entry.name!r}: each person "
                    "needs a token of their own (the token itself is not shown)"
                )
        self._tokens = [(entry.token.encode(), entry) for entry in tokens]
        self._scopes = list(scopes)
        self._resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        offered = token.encode()
        matched: StaticToken | None = None
        for known, entry in self._tokens:
            if hmac.compare_digest(offered, known):  # every token is compared: no early exit
                matched = matched or entry
        if matched is None:
            return None
        return AccessToken(
            token=token,
            client_id=matched.name,
            subject=matched.name,
            scopes=[*self._scopes, *matched.scopes],
            resource=self._resource,
        )


CLIENT_PRINCIPAL_PREFIX = "client:"
"""A token with no `sub` (a client acting for itself) is the principal `client:<client_id>`, so a
client id can never name the person whose `sub` it equals."""


def jwt_principal(claims: dict[str, Any]) -> str | None:
    """The principal a verified token's claims name: its `sub`, or `client:` and its `client_id`
    (or `azp`) when it has none; None (refused) when it names neither, names the local principal,
    or has a `sub` in the clients' namespace."""
    sub = claims.get("sub")
    if sub:
        if str(sub) == LOCAL_NAME or str(sub).startswith(CLIENT_PRINCIPAL_PREFIX):
            logger.info("refused an access token: its sub is a name reserved for the server's own use")
            return None
        return str(sub)
    client = claims.get("client_id") or claims.get("azp")
    if not client:
        logger.info("refused an access token: it names no principal (sub, client_id or azp)")
        return None
    return CLIENT_PRINCIPAL_PREFIX + str(client)


class JwtVerifier:
    """Verifies JWT access tokens against the issuer's published keys (JWKS).

    Checks the signature (asymmetric algorithms only), `exp`/`nbf`, `iss` and `aud` (which
    must name this server, RFC 8707). Scopes come from `scope` (space-separated) or `scp`.
    """

    def __init__(self, *, issuer: str, audience: str, jwks_url: str, leeway_s: float = 30.0) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url
        self._leeway_s = leeway_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = anyio.Lock()

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        key = await self._key(str(header.get("kid", "")))
        if key is None or header.get("alg") not in JWT_ALGORITHMS:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(JWT_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("refused an access token: %s", exc)
            return None
        scope = claims.get("scope", claims.get("scp", ""))
        scopes = scope.split() if isinstance(scope, str) else [str(item) for item in scope]
        client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown"
        principal = jwt_principal(claims)
        if principal is None:
            return None
        return AccessToken(
            token=token,
            client_id=str(client_id),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=self._audience,
            subject=str(principal),
            claims={"iss": claims.get("iss")},
        )

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        async with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > JWKS_TTL_S
            unknown = kid not in self._keys and now - self._fetched_at > JWKS_REFRESH_MIN_S
            if stale or unknown:
                await self._fetch_keys()
            if kid:
                return self._keys.get(kid)
            return next(iter(self._keys.values()), None) if len(self._keys) == 1 else None

    async def _fetch_keys(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            async with httpx2.AsyncClient(timeout=10, follow_redirects=False) as client:
                response = await client.get(self._jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = json.loads(response.content)
        except (httpx2.HTTPError, ValueError) as exc:
            logger.warning("could not fetch the issuer's keys from %s: %s", self._jwks_url, exc)
            return
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            try:
                keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry)
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
        self._keys = keys
