"""OLLAMA_BACKENDS routing fields and BACKEND_QUEUE_TIMEOUT: defaults, values, clear refusals."""

from __future__ import annotations

import json

import pytest

from config import Backend, Settings, SettingsError


def _backends(*entries: dict[str, object]) -> tuple[Backend, ...]:
    env = {"OLLAMA_BACKENDS": json.dumps(list(entries))}
    return Settings.from_env(env, dotenv=None).backends


def test_defaults_keep_strict_priority_and_no_cap() -> None:
    a, b = _backends({"name": "a", "url": "http://a"}, {"url": "http://b"})
    assert (a.weight, a.max_concurrent, a.group) == (1.0, None, None)  # group: its position
    assert b.name == "backend-2"
    assert Settings.from_env({}, dotenv=None).backend_queue_timeout == 0.0


def test_routing_fields_are_read() -> None:
    (gpu,) = _backends(
        {
            "name": "gpu",
            "url": "http://g",
            "token": "t",
            "weight": 2.5,
            "max_concurrent": 4,
            "group": -1,
        }
    )
    assert (gpu.weight, gpu.max_concurrent, gpu.group, gpu.token) == (2.5, 4, -1, "t")
    env = {"BACKEND_QUEUE_TIMEOUT": "2.5"}
    assert Settings.from_env(env, dotenv=None).backend_queue_timeout == 2.5


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"weight": 0}, '"weight" must be a positive number'),
        ({"weight": -2}, '"weight" must be a positive number'),
        ({"weight": "3"}, '"weight" must be a positive number'),
        ({"weight": True}, '"weight" must be a positive number'),
        ({"max_concurrent": 0}, '"max_concurrent" must be a positive integer'),
        ({"max_concurrent": 2.5}, '"max_concurrent" must be a positive integer'),
        ({"max_concurrent": "4"}, '"max_concurrent" must be a positive integer'),
        ({"group": 1.5}, '"group" must be an integer'),
        ({"group": False}, '"group" must be an integer'),
        ({"maxConcurrent": 4}, "unknown field(s) maxConcurrent"),
        ({"url": "ftp://x"}, '"url" must be an http:// or https:// URL'),
    ],
)
def test_bad_routing_fields_name_the_variable_the_entry_and_the_field(
    entry: dict[str, object], says: str
) -> None:
    good: dict[str, object] = {"name": "first", "url": "http://a", "token": "hunter2-secret"}
    with pytest.raises(SettingsError) as refused:
        _backends(good, {"name": "second", "url": "http://b", "token": "hunter2-secret"} | entry)
    message = str(refused.value)
    assert message.startswith("OLLAMA_BACKENDS is invalid") and "entry 2" in message
    assert says in message and "hunter2" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ('[{"url": "http://a", "token": "hunter2-secret"', "not valid JSON (line 1 column"),
        ("[]", "non-empty JSON list"),
        ('{"url": "http://a"}', "non-empty JSON list"),
        ('["http://a"]', "entry 1 is not a JSON object"),
        ('[{"url":"http://a","name":"x"},{"url":"http://b","name":"x"}]', "name(s) x appear"),
        ('[{"url": "http://a", "weight": NaN}]', '"weight" must be a positive number'),
        ('[{"url": "http://a", "weight": 1e999}]', '"weight" must be a positive number'),
    ],
)
def test_malformed_lists_are_refused_without_showing_the_value(raw: str, says: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"OLLAMA_BACKENDS": raw}, dotenv=None)
    message = str(refused.value)
    assert "OLLAMA_BACKENDS" in message and says in message and "hunter2" not in message


@pytest.mark.parametrize("value", ["-1", "soon", "inf", "nan"])
def test_a_bad_queue_timeout_is_named(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"BACKEND_QUEUE_TIMEOUT": value}, dotenv=None)
    assert str(refused.value).startswith(f"BACKEND_QUEUE_TIMEOUT={value!r} is invalid")
