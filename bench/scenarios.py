"""What is sent: the endpoints and bodies the bench measures, and the targets they go to."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.procs import Child

PROMPT = [{"role": "user", "content": "Why is the sky blue?"}]
OUTPUT_TOKENS = 12  # the fake's default generation length; every target is asked for the same


@dataclass(frozen=True)
class Scenario:
    """One request shape: a path and a JSON body, streamed or not."""

    name: str
    path: str
    body: dict[str, object]
    stream: bool

    @property
    def payload(self) -> bytes:
        """The body as sent."""
        return json.dumps(self.body, separators=(",", ":")).encode()


def _chat_v1(stream: bool) -> dict[str, object]:
    return {"model": "llama3.2", "messages": PROMPT, "max_tokens": OUTPUT_TOKENS, "stream": stream}


def _chat_api(stream: bool) -> dict[str, object]:
    return {
        "model": "llama3.2",
        "messages": PROMPT,
        "stream": stream,
        "options": {"num_predict": OUTPUT_TOKENS},
    }


SCENARIOS = (
    Scenario("v1-chat", "/v1/chat/completions", _chat_v1(False), False),
    Scenario("v1-chat-stream", "/v1/chat/completions", _chat_v1(True), True),
    Scenario("api-chat", "/api/chat", _chat_api(False), False),
    Scenario("api-chat-stream", "/api/chat", _chat_api(True), True),
    Scenario("v1-embeddings", "/v1/embeddings", {"model": "all-minilm", "input": "sky"}, False),
)
PACED = Scenario(
    "api-chat-paced", "/api/chat", {"model": "llama3.2", "messages": PROMPT, "stream": True}, True
)


@dataclass
class Target:
    """Something requests are sent to: the fake itself, a relay, the gateway, LiteLLM."""

    name: str
    url: str
    child: Child | None  # whose process tree is measured (CPU, RSS)
    headers: dict[str, str] = field(default_factory=dict)
    paths: frozenset[str] | None = None  # None: every path
    uses_redis: bool = False
    workers: list[int] = field(default_factory=list)  # a gateway's worker pids, from its log

    def supports(self, scenario: Scenario) -> bool:
        """Whether this target serves the scenario's path."""
        return self.paths is None or scenario.path in self.paths

    @property
    def host_port(self) -> tuple[str, int]:
        """Host and port of the base URL."""
        hostport = self.url.split("//", 1)[1]
        host, port = hostport.rsplit(":", 1)
        return host, int(port)
