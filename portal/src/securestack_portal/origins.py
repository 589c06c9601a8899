"""The portal's public origin: which Host it answers to, and where a form may come from.

The web tier forwards the Host the browser sent, port included (X-Forwarded-Host,
read by ProxyFix). That host must be one of `[web] trusted_hosts`: an entry
`name` trusts the name on any port (the web tier may sit behind a port-forward
the role cannot know), `name:port` that port only. A form (any state-changing
request outside the JSON API) must come from the very origin the request was
made to, as its Origin header, or else its Referer, says.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"https": 443, "http": 80}
_HOST = re.compile(r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)(:(?P<port>[0-9]{1,5}))?$")


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` as (lower-case name, port or None); None when it is not a host."""
    match = _HOST.match(value.strip().lower())
    if not match:
        return None
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        return None
    return match.group("name"), port


def host_is_trusted(host: str, trusted: tuple[str, ...], scheme: str = "https") -> bool:
    """Whether the request's Host (as forwarded) is one of the trusted entries."""
    parsed = split_host(host)
    if parsed is None:
        return False
    name, port = parsed
    port = port or DEFAULT_PORTS.get(scheme)
    for entry in trusted:
        wanted = split_host(entry)
        if wanted is None or wanted[0] != name:
            continue
        if wanted[1] is None or wanted[1] == port:
            return True
    return False


def origin_of(url: str) -> str | None:
    """The origin (scheme://host[:port], default port left out) of a URL, or None when it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host.lower()}"


def request_origin(scheme: str, host: str) -> str | None:
    """The origin a browser sees for a request made to `host` over `scheme`."""
    return origin_of(f"{scheme}://{host}/")


def form_source(origin_header: str | None, referer: str | None) -> tuple[str | None, str]:
    """Where a form came from: (its origin or None, which header said so).

    Browsers send Origin with every form post; "null" (a privacy-sensitive
    context, or Referrer-Policy no-referrer) says nothing, and then the Referer decides.
    """
    if origin_header and origin_header.strip() != "null":
        return origin_of(origin_header), "Origin"
    if referer:
        return origin_of(referer), "Referer"
    return None, ""
