"""Who is calling: every request has exactly one principal, and everything it makes is theirs.

- Over HTTP/SSE with auth: the access token's principal. For a JWT that is its `sub` (then
  `client_id`, then `azp`); for a static token, the name it was given (`alice:TOKEN`, or
  `alice TOKEN` in the tokens file), or a stable name derived from a hash of the token.
- Over stdio, and over HTTP without auth: the one local principal.

A principal's name keys its images, jobs, usage and budget. `imagegen:admin` in the token's
scopes lets it list and read everyone's images and usage; it never lets it act as anyone else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mcp.server.auth.middleware.auth_context import get_access_token

from mcp_imagegen.store.base import LOCAL_OWNER

LOCAL_NAME = LOCAL_OWNER
ADMIN_SCOPE = "imagegen:admin"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
"""What a static token's name may be: it shows in usage reports and logs, so it stays plain."""


@dataclass(frozen=True)
class Principal:
    name: str
    admin: bool = False
    remote: bool = False
    """Reached over an authenticated remote transport: the server's own file paths are neither
    read for it (unless IMAGEGEN_REMOTE_ALLOW_PATHS says so) nor shown to it."""

    @property
    def sees(self) -> str | None:
        """The owner whose images this principal may list and read; None: everyone's (admin)."""
        return None if self.admin else self.name


LOCAL = Principal(LOCAL_NAME)


def current_principal() -> Principal:
    """The principal of the request being served (the local one outside any authenticated request)."""
    token = get_access_token()
    if token is None:
        return LOCAL
    return Principal(token.subject or token.client_id, admin=ADMIN_SCOPE in token.scopes, remote=True)


def derived_name(token: str) -> str:
    """The name of a token that was given none: stable across restarts and configuration order,
    and never containing the token (a short hash of it)."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def checked_name(name: str, where: str) -> str:
    """A configured principal name, refused where it is not plain or is the local principal's."""
    if name == LOCAL_NAME:
        raise ValueError(
            f"{where}: {LOCAL_NAME!r} is the name of the local (stdio) principal; choose another"
        )
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{where}: principal name {name[:40]!r} may use letters, digits and . _ @ + - only (at most 128)"
        )
    return name
