"""Shared fixtures: a fresh PostgreSQL database and a private Redis namespace per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from config import Settings
from tests import dbs
from tests.redis_cluster import running_cluster

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """This run's migrated template database."""
    try:
        name = dbs.create_template()
    except OSError as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {dbs.ADMIN_URL} ({exc}). Install and start it "
            "(apt-get install postgresql) or set DATABASE_URL.",
            returncode=3,
        )
    yield name
    dbs.drop_database(dbs._with_db(dbs.ADMIN_URL, name))


@pytest.fixture(scope="package")
def package_db(pg_template: str) -> Iterator[str]:
    """A migrated database shared by one test package (its tests use their own tenants)."""
    url = dbs.create_database(pg_template)
    yield url
    dbs.drop_database(url)


@pytest.fixture
def database_url(pg_template: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for one test."""
    url = dbs.create_database(pg_template)
    yield url
    dbs.drop_database(url)


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """An empty PostgreSQL database (no migrations applied)."""
    url = dbs.create_empty_database()
    yield url
    dbs.drop_database(url)


@pytest.fixture
def redis_namespace() -> str:
    """A Redis namespace (keys and pub/sub channel) private to one test."""
    return f"nzgw-t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(database_url: str, redis_namespace: str) -> Settings:
    """Settings on the test's own database and Redis namespace."""
    return Settings(database_url=database_url, redis_url=REDIS_URL, redis_namespace=redis_namespace)


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-master Redis Cluster for the session (started when first asked for): the URL
    of one of its nodes. Tests that kill nodes start their own (tests/cluster)."""
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield f"redis://127.0.0.1:{cluster.ports[0]}"


# Packages whose tests share package-scoped servers (a gateway, a cluster): under xdist they run
# on one worker, so each server starts once; every other test file is a group of its own.
SHARED_SERVERS = ("tests/routes/", "tests/limits_e2e/", "tests/cluster/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group tests for `--dist loadgroup` (make test): by package where servers are shared."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = next((p for p in SHARED_SERVERS if path.startswith(p)), path)
        item.add_marker(pytest.mark.xdist_group(group))
