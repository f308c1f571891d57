"""REDIS_URL and REDIS_CLUSTER: one server or a Redis Cluster, and clear errors naming them."""

from __future__ import annotations

import pytest

from config import Settings, SettingsError
from config.redis_target import RedisTarget, redis_target


def _settings(**env: str) -> Settings:
    return Settings.from_env(env, dotenv=None)


def test_one_server_is_not_a_cluster() -> None:
    s = _settings(REDIS_URL="redis://:pw@h:6380/2")
    assert s.redis_cluster is False
    assert s.redis == RedisTarget(url="redis://:pw@h:6380/2", cluster=False)
    assert s.redis.server_urls == ("redis://:pw@h:6380/2",)


@pytest.mark.parametrize(
    ("url", "urls", "nodes"),
    [
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001/",
            ("redis://10.0.0.1:7000", "redis://10.0.0.2:7001"),
            (("10.0.0.1", 7000), ("10.0.0.2", 7001)),
        ),
        (
            "rediss+cluster://gw:p%40ss@a.example:7000,b.example/0?ssl_cert_reqs=none",
            (
                "rediss://gw:p%40ss@a.example:7000?ssl_cert_reqs=none",
                "rediss://gw:p%40ss@b.example:6379?ssl_cert_reqs=none",
            ),
            (("a.example", 7000), ("b.example", 6379)),
        ),
        ("redis+cluster://[::1]:7000", ("redis://[::1]:7000",), (("::1", 7000),)),
    ],
)
def test_a_cluster_url_lists_its_startup_nodes(
    url: str, urls: tuple[str, ...], nodes: tuple[tuple[str, int], ...]
) -> None:
    s = _settings(REDIS_URL=url)
    assert s.redis_cluster is True
    assert s.redis == RedisTarget(url=urls[0], cluster=True, nodes=nodes, node_urls=urls)
    assert s.redis.server_urls == urls


def test_the_switch_makes_a_plain_url_name_a_cluster_node() -> None:
    for flag in ("1", "true", "yes"):
        s = _settings(REDIS_URL="redis://h:7000", REDIS_CLUSTER=flag)
        assert s.redis_cluster and s.redis is not None and s.redis.nodes == (("h", 7000),)
        assert s.redis.server_urls == ("redis://h:7000",)
    assert not _settings(REDIS_URL="redis://h:7000", REDIS_CLUSTER="0").redis_cluster


def test_settings_built_in_code_read_the_scheme_too() -> None:
    target = Settings(redis_url="redis+cluster://a:1,b:2").redis
    assert target is not None and target.cluster and len(target.nodes) == 2


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"REDIS_CLUSTER": "1"}, "REDIS_CLUSTER is set but REDIS_URL is not"),
        ({"REDIS_URL": "redis://h:1", "REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER="),
        ({"REDIS_URL": "unix:///run/redis.sock", "REDIS_CLUSTER": "1"}, "unix:// socket"),
        ({"REDIS_URL": "redis://h:1/3", "REDIS_CLUSTER": "1"}, "only database 0"),
        ({"REDIS_URL": "redis+cluster://h:1/3"}, "only database 0"),
        ({"REDIS_URL": "redis+cluster://"}, "no cluster node"),
        ({"REDIS_URL": "redis+cluster://h:99999"}, "not a number 1-65535"),
        ({"REDIS_URL": "redis://a:1,b:2", "REDIS_CLUSTER": "1"}, "several nodes need"),
        ({"REDIS_URL": "memcached://h:1"}, "scheme"),
    ],
)
def test_bad_redis_settings_say_what_is_wrong(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as refused:
        _settings(**env)
    message = str(refused.value)
    assert words in message
    assert message.startswith(("REDIS_URL is invalid", "REDIS_CLUSTER"))


def test_a_bad_cluster_url_never_shows_its_password() -> None:
    with pytest.raises(SettingsError) as refused:
        _settings(REDIS_URL="redis+cluster://gw:hunter2-secret@h:1,h:2/5")
    assert "hunter2" not in str(refused.value) and "expected" in str(refused.value)
    target = redis_target("redis+cluster://gw:hunter2-secret@h:1,h:2")
    assert "hunter2" not in repr(target)
    assert "hunter2" not in repr(Settings(redis_url="redis+cluster://gw:hunter2-secret@h:1"))
