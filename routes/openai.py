"""The /v1 surface: OpenAI's chat, completions, embeddings, responses and models, and
Anthropic's Messages API (/v1/messages), as Ollama serves them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sanic import Blueprint

from routes.relayed import json_answer, listing, relayed
from server.context import App, GatewayRequest
from server.relay.body import Kind
from server.relay.pipeline import Target, relay

RELAYED = {
    "chat/completions": Kind.OPENAI_GENERATE,
    "completions": Kind.OPENAI_GENERATE,
    "embeddings": Kind.OPENAI_EMBED,
    "responses": Kind.OPENAI_RESPONSES,
    "messages": Kind.ANTHROPIC_MESSAGES,  # Anthropic's Messages API (Claude Code)
}
JSON = "application/json"


async def models(request: GatewayRequest) -> Any:
    """Models over every healthy backend, limited to the key's models."""
    data = await listing(request, "/v1/models", "data")
    return json_answer({"object": "list", "data": data}, JSON)


async def model(request: GatewayRequest, name: str) -> None:
    """One model (403 when the key may not use it, 404 from the backend when absent)."""
    await relay(request, Target(f"/v1/models/{quote(name, safe=':')}", model=name))


def register(app: App, v1: Blueprint) -> None:
    """Add the /v1 routes to the blueprint behind the key guard."""
    for path, kind in RELAYED.items():
        name = "v1_" + path.replace("/", "_")
        v1.add_route(relayed(Target(f"/v1/{path}", kind)), f"/{path}", methods=["POST"], name=name)
    v1.add_route(models, "/models", methods=["GET"], name="v1_models")
    v1.add_route(model, "/models/<name:str>", methods=["GET"], name="v1_model")
