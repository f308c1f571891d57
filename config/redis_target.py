"""Where Redis is: one server (a redis://, rediss:// or unix:// URL) or a Redis Cluster.

A cluster is named by ``redis+cluster://[user:password@]host:port,host:port[/0][?options]``
(``rediss+cluster://`` for TLS), or by a plain ``redis://host:port`` (or ``rediss://``) with
REDIS_CLUSTER=1: the nodes given are where the client starts; it finds the others itself.
Errors never quote the URL (it may hold a password).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

PLAIN_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
DEFAULT_PORT = 6379
EXPECTED = (
    "redis://host:port/db, rediss://… or unix://…, or for a Redis Cluster "
    "redis+cluster://host:port,host:port (rediss+cluster:// for TLS)"
)


class RedisUrlError(ValueError):
    """What is wrong with a Redis URL, in words that never quote it."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed REDIS_URL: the URL the client reads its options from, and the cluster's nodes."""

    url: str  # one server's URL (for a cluster: the first node's, with the user and options)
    cluster: bool
    nodes: tuple[tuple[str, int], ...] = ()  # a cluster's startup nodes, the first included
    node_urls: tuple[str, ...] = ()  # the URL of each of them, as one server (user, options)

    def __repr__(self) -> str:
        return f"RedisTarget(url=***, cluster={self.cluster}, nodes={self.nodes!r})"

    @property
    def server_urls(self) -> tuple[str, ...]:
        """Every server one may talk to on its own: the one server, or each startup node."""
        return self.node_urls or (self.url,)


def _node(part: str) -> tuple[str, int]:
    """``host:port``, ``host`` or ``[v6]:port`` -> (host, port)."""
    parsed = urlsplit(f"//{part}")
    try:
        port = parsed.port or DEFAULT_PORT
    except ValueError:
        raise RedisUrlError("a cluster node has a port that is not a number 1-65535") from None
    if not parsed.hostname or "@" in part:
        raise RedisUrlError("a cluster node has no host (expected host:port,host:port)")
    return parsed.hostname, port


def _database(path: str) -> None:
    """A cluster has only database 0: refuse a URL that names another."""
    db = path.strip("/")
    if db not in ("", "0"):
        raise RedisUrlError("a Redis Cluster has only database 0; drop the /<db> part")


def _cluster(scheme: str, rest: str) -> RedisTarget:
    """``redis+cluster://…``: the list of nodes after the user part; the options are kept."""
    ends = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    end = min(ends, default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    user, at, hosts = netloc.rpartition("@")
    nodes = tuple(_node(h.strip()) for h in hosts.split(",") if h.strip())
    if not nodes:
        raise RedisUrlError("no cluster node given (expected host:port,host:port)")
    path, _, query = tail.partition("?")
    _database(path)
    urls = tuple(
        urlunsplit((CLUSTER_SCHEMES[scheme], f"{user}{at}{_shown(host)}:{port}", "", query, ""))
        for host, port in nodes
    )
    return RedisTarget(url=urls[0], cluster=True, nodes=nodes, node_urls=urls)


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def redis_target(url: str, *, cluster: bool = False) -> RedisTarget:
    """Parse REDIS_URL (``cluster``: REDIS_CLUSTER was set); raise RedisUrlError if unusable."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or (scheme not in PLAIN_SCHEMES and scheme not in CLUSTER_SCHEMES):
        raise RedisUrlError("its scheme is not one of Redis's")
    if scheme in CLUSTER_SCHEMES:
        return _cluster(scheme, rest)
    if not cluster:
        return RedisTarget(url=url, cluster=False)
    if scheme == "unix":
        raise RedisUrlError("a Redis Cluster is reached over TCP, not a unix:// socket")
    parts = urlsplit(url.strip())
    if "," in parts.netloc:
        raise RedisUrlError("several nodes need redis+cluster://host:port,host:port")
    host, port = _node(parts.netloc.rpartition("@")[2])
    _database(parts.path)
    return RedisTarget(url=url, cluster=True, nodes=((host, port),), node_urls=(url,))
