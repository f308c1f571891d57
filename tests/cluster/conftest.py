"""A three-master Redis Cluster started by the tests, and two gateway replicas of two workers
on it (one PostgreSQL database, one fake Ollama)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from limits import shard_of
from tests.fake_ollama.runner import FakeOllama
from tests.gateway import cli, replicas
from tests.limits_e2e.conftest import Cluster as Deployment
from tests.limits_e2e.conftest import env_for
from tests.redis_cluster import LocalCluster, running_cluster


@pytest.fixture(scope="package")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three masters on free ports, in a temporary directory; killed at the end."""
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="package")
def deployment(package_db: str, redis_cluster: LocalCluster) -> Iterator[Deployment]:
    """A fake Ollama and two replicas of `serve --workers 2` whose REDIS_URL is
    redis+cluster://<the three nodes>."""
    with FakeOllama() as fake:
        env = env_for(package_db, redis_cluster.url, fake, KEY_CACHE_TTL="300")
        with replicas(env) as started:
            yield Deployment(fake, started, env)


@pytest.fixture(autouse=True)
def _fresh_fake(deployment: Deployment) -> None:
    deployment.fake.reset()


def node_of_tenant(redis_cluster: LocalCluster, tenant_id: int) -> int:
    """The port of the node that holds a tenant's counters (and the audit shard it feeds)."""
    return redis_cluster.node_of(f"{{s:{shard_of(str(tenant_id))}}}")


def _create_tenant(env: dict[str, str]) -> tuple[int, str]:
    name = f"t{uuid.uuid4().hex[:8]}"
    out = cli(env, "create-tenant", "--name", name).stdout
    match = re.search(r"\(id (\d+)\)", out)
    assert match, out
    return int(match.group(1)), name


@pytest.fixture(scope="package")
def tenants(deployment: Deployment, redis_cluster: LocalCluster) -> dict[int, str]:
    """One tenant (no limits of its own) per node: node port -> tenant name."""
    found: dict[int, str] = {}
    nodes = len(redis_cluster.ports)
    with ThreadPoolExecutor(nodes) as pool:
        for _ in range(10):  # a few CLI runs at a time, until each node has one
            for ident, name in pool.map(_create_tenant, [deployment.env] * nodes):
                found.setdefault(node_of_tenant(redis_cluster, ident), name)
            if len(found) == nodes:
                return found
    raise AssertionError(f"no tenant landed on every node: {found}")
