"""Runtime configuration and mutable server state (installed models, records, loads)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .load import Load
from .models import BUILTIN, DEFAULT_HOST, ModelSpec, guess_spec, parse_name, renamed
from .util import MAX_GO_DURATION_NS

FAULTS = (None, "error_before_first", "midstream_error", "busy", "load_timeout", "abrupt_close")
DEFAULT_KEEP_ALIVE_NS = 5 * 60 * 1_000_000_000


class ConfigError(ValueError):
    """Raised when /_fake/config receives an invalid value."""


@dataclass
class Config:
    """Knobs settable from the command line and /_fake/config."""

    models: list[str] = field(default_factory=list)
    version: str = "0.33.0"
    pace_ms: float = 0.0
    first_byte_ms: float = 0.0
    tokens: int = 12
    fault: str | None = None
    fault_after: int = 2
    require_token: str | None = None
    busy_next: int = 0  # the next N inference requests answer 503 "server busy"
    parallel: int = 0  # model slots (OLLAMA_NUM_PARALLEL); 0 = no limit
    max_queue: int = 512  # waiting requests beyond `parallel` before 503 (OLLAMA_MAX_QUEUE)
    fast: bool = False  # coalesce stream writes (big generations); pace_ms still applies
    registry: list[str] | None = None  # pullable names; None = built-ins and configured models
    anthropic_ping: bool = False  # /v1/messages streams: a ping event as api.anthropic.com sends

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON object."""
        return asdict(self)

    def merged(self, patch: dict[str, Any]) -> Config:
        """A validated copy with `patch` applied."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(patch) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {unknown}")
        data = self.to_json() | patch
        if data["fault"] not in FAULTS:
            raise ConfigError(f"fault must be one of {list(FAULTS)}")
        if not isinstance(data["models"], list) or not all(
            isinstance(m, str) for m in data["models"]
        ):
            raise ConfigError("models must be a list of strings")
        for key in ("pace_ms", "first_byte_ms"):
            if not isinstance(data[key], (int, float)) or data[key] < 0:
                raise ConfigError(f"{key} must be a non-negative number")
        for key in ("tokens", "fault_after", "busy_next", "parallel", "max_queue"):
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 0:
                raise ConfigError(f"{key} must be a non-negative integer")
        for key in ("fast", "anthropic_ping"):
            if not isinstance(data[key], bool):
                raise ConfigError(f"{key} must be a boolean")
        registry = data["registry"]
        if registry is not None and not (
            isinstance(registry, list) and all(isinstance(m, str) for m in registry)
        ):
            raise ConfigError("registry must be a list of strings or null")
        return Config(**data)


@dataclass
class Loaded:
    """A model resident in (fake) memory."""

    spec: ModelSpec
    expires_ns: int
    context_length: int


class State:
    """All mutable state of one fake server process."""

    def __init__(self, base: Config) -> None:
        self.base = base
        self.config = Config(**base.to_json())
        self.requests: list[dict[str, Any]] = []
        self.cancellations: list[dict[str, Any]] = []
        self.installed: dict[str, ModelSpec] = {}
        self.loaded: dict[str, Loaded] = {}
        self.blobs: dict[str, int] = {}
        self.load = Load()
        self._install_from_config()

    def _install_from_config(self) -> None:
        self.installed = {}
        for name in self.config.models:
            spec = guess_spec(name)
            ref = parse_name(name)
            key = ref.canonical if ref else name.lower()
            self.installed[key] = spec if spec.name == key else renamed(spec, key, spec.modified_ns)
        self.loaded = {k: v for k, v in self.loaded.items() if k in self.installed}

    def reset(self) -> None:
        """Forget records and overrides; back to the command-line configuration."""
        self.config = Config(**self.base.to_json())
        self.requests.clear()
        self.cancellations.clear()
        self.loaded.clear()
        self.blobs.clear()
        self.load.reset()
        self._install_from_config()

    def configure(self, patch: dict[str, Any]) -> None:
        """Merge a patch into the runtime config."""
        new = self.config.merged(patch)
        models_changed = new.models != self.config.models
        self.config = new
        if models_changed:
            self._install_from_config()

    def lookup(self, raw: str) -> ModelSpec | None:
        """Find an installed model (case-insensitive, default tag/namespace)."""
        ref = parse_name(raw)
        return self.installed.get(ref.canonical) if ref else None

    def pullable(self, raw: str) -> ModelSpec | None:
        """A spec the fake 'registry' can serve for pull, or None."""
        ref = parse_name(raw)
        if ref is None or ref.host.lower() != DEFAULT_HOST:
            return None
        names = self.config.registry
        if names is None:
            names = [*BUILTIN, *self.base.models, *self.config.models, *self.installed]
        refs = (parse_name(n) for n in names)
        if ref.canonical not in {r.canonical for r in refs if r is not None}:
            return None
        spec = self.installed.get(ref.canonical) or guess_spec(ref.canonical)
        return spec if spec.name == ref.canonical else renamed(spec, ref.canonical, time.time_ns())

    def touch(self, spec: ModelSpec, keep_alive_ns: int | None, context_length: int) -> None:
        """Mark a model loaded; keep_alive 0 unloads it."""
        ka = DEFAULT_KEEP_ALIVE_NS if keep_alive_ns is None else keep_alive_ns
        if ka == 0:
            self.loaded.pop(spec.name, None)
            return
        now = time.time_ns()
        expires = now + ka if ka < MAX_GO_DURATION_NS - now else MAX_GO_DURATION_NS
        self.loaded[spec.name] = Loaded(spec, expires, context_length)

    def running(self) -> list[Loaded]:
        """Loaded models that have not expired, newest expiry first."""
        now = time.time_ns()
        self.loaded = {k: v for k, v in self.loaded.items() if v.expires_ns > now}
        return sorted(self.loaded.values(), key=lambda v: v.expires_ns, reverse=True)
