"""The prompt estimate reads field names as Ollama's Go decoder does: no spelling is free."""

from __future__ import annotations

import pytest

from server.accounting.estimate import IMAGE_TOKENS, prompt_tokens

TEXT = "word " * 2000  # 10,000 characters: about 2,500 tokens
PLAIN = prompt_tokens({"model": "m", "prompt": TEXT})


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "PROMPT": TEXT},
        {"model": "m", "Prompt": TEXT},
        {"model": "m", "pro\u006dpt": TEXT},
        {"model": "m", "Sy\u017ftem": TEXT},  # U+017F folds to S
        {"model": "m", "INPUT": TEXT},
        {"model": "m", "Instructions": TEXT},
        {"model": "m", "messages": [{"role": "user", "CONTENT": TEXT}]},
        {"model": "m", "Messages": [{"role": "user", "content": TEXT}]},
        {"model": "m", "MESSAGES": [{"Role": "user", "Content": [{"type": "text", "TEXT": TEXT}]}]},
        {
            "model": "m",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": TEXT}]}],
        },
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "content": [{"type": "text", "text": TEXT}]}
                    ],
                }
            ],
        },
    ],
)
def test_every_spelling_and_nesting_of_the_text_is_counted(body: dict[str, object]) -> None:
    assert prompt_tokens(body) >= PLAIN - 5 >= 2500


def test_every_spelling_present_is_counted_not_only_one() -> None:
    both = prompt_tokens({"model": "m", "prompt": "x", "PROMPT": TEXT})
    assert both >= PLAIN


def test_images_tools_and_context_are_reserved() -> None:
    base = prompt_tokens({"model": "m", "prompt": "hi"})
    image = "A" * 100_000  # base64 is an image, not 25,000 tokens of text
    assert prompt_tokens({"model": "m", "prompt": "hi", "IMAGES": [image]}) == base + IMAGE_TOKENS
    url = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}}
    chat = prompt_tokens({"model": "m", "messages": [{"role": "user", "content": [url]}]})
    assert chat == prompt_tokens({"model": "m", "messages": [{"role": "user"}]}) + IMAGE_TOKENS
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"d": TEXT}}}]
    assert prompt_tokens({"model": "m", "prompt": "hi", "Tools": tools}) >= base + 2500
    assert prompt_tokens({"model": "m", "prompt": "hi", "CONTEXT": list(range(300))}) == base + 300


def test_simple_bodies_are_estimated_as_before() -> None:
    # ceil(20 chars / 4) + 20 (template) + 5 (one message)
    chat = {"model": "m", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    assert prompt_tokens(chat) == 5 + 20 + 5
    assert prompt_tokens({"model": "m", "prompt": "Why is the sky blue?"}) == 5 + 20
