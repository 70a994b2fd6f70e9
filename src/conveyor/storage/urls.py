"""Parsing of the Redis URLs Conveyor accepts (pure; ``storage.redis`` builds the clients).

* ``redis://[user:password@]host:port/db``, ``rediss://...``, ``unix:///path?db=0``:
  one server (redis-py's own URL handling).
* ``redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]
  [?sentinel_password=...]``: the master that Sentinel names; clients follow failovers.
* ``redis+cluster://[user:password@]host:port[,host:port...]``: a Redis Cluster; each queue's
  keys share one hash slot, so every script of a queue runs on one node.

``rediss+sentinel://`` and ``rediss+cluster://`` use TLS to the data nodes.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, unquote

from ..errors import ConfigurationError

__all__ = ["RedisTarget", "parse_url"]


@dataclasses.dataclass(frozen=True, slots=True)
class RedisTarget:
    kind: str  # "standalone", "sentinel" or "cluster"
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def _hosts(netloc: str, url: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "")
        if not host:
            raise ConfigurationError(f"no host in Redis URL {url!r}")
        try:
            hosts.append((host.strip("[]"), int(port) if port else default_port))
        except ValueError:
            raise ConfigurationError(f"invalid port {port!r} in Redis URL {url!r}") from None
    return tuple(hosts)


def parse_url(url: str) -> RedisTarget:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(f"Redis URL {url!r} has no scheme (e.g. redis://host:6379/0)")
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget("standalone", url)
    if scheme not in ("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"):
        raise ConfigurationError(
            f"unknown Redis URL scheme {scheme!r}; use redis, rediss, unix, redis+sentinel "
            "or redis+cluster"
        )
    # urlsplit cannot parse "h1:1,h2:2", so split the credentials and hosts by hand.
    netloc, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    credentials, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    kind = scheme.partition("+")[2]
    ssl = scheme.startswith("rediss")
    if kind == "cluster":
        return RedisTarget(
            "cluster", url, _hosts(hostlist, url, 6379), None, 0, username, password, None, ssl
        )
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ConfigurationError(f"Sentinel URL {url!r} must name the master: .../<name>[/db]")
    try:
        db = int(parts[1]) if len(parts) > 1 else int(params.get("db", 0))
    except ValueError:
        raise ConfigurationError(f"invalid database number in Redis URL {url!r}") from None
    return RedisTarget(
        "sentinel",
        url,
        _hosts(hostlist, url, 26379),
        unquote(parts[0]),
        db,
        username,
        password,
        params.get("sentinel_password"),
        ssl,
    )
