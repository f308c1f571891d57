"""Responses API answers: ToResponse's object and ResponsesStreamConverter's named SSE events.

Stream events are Go maps, so their keys come out sorted; the non-streamed response is a struct
(field order). Both report `status: "completed"`, also when max_output_tokens cut the answer.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sanic import HTTPResponse

from .anthropic_format import STREAM_HEADERS
from .generation import Result
from .godecode import Raw
from .plan import Piece, ToolCall
from .util import go_json
from .web import CT_JSON, CT_SSE, openai_error


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message(item_id: str, status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call_item(item_id: str, call: ToolCall, status: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": arguments,
    }


def _usage(result: Result) -> dict[str, Any]:
    prompt, output = result.plan.prompt_tokens, result.eval_count
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": prompt + output,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }


def _raw(value: Any) -> Any:
    return value.value() if isinstance(value, Raw) else value


class ResponsesFormatter:
    """Writes a chat answer as a Responses API response."""

    stream_content_type = CT_SSE
    aggregate_content_type = CT_JSON
    aggregate_newline = True
    stream_headers: tuple[tuple[str, str], ...] = STREAM_HEADERS

    def __init__(self, response_id: str, item_id: str, request: dict[str, Any]) -> None:
        self.id = response_id
        self.item_id = item_id
        self.request = request
        self.model: str = request.get("model", "")
        self.seq = 0
        self.started = False
        self.output_index = 0
        self.text = ""
        self.text_started = False
        self.tools_sent = False
        self.thinking = ""
        self.reasoning_id = ""
        self.completed: list[dict[str, Any]] = []

    # --- the echoed request -------------------------------------------------------------------

    def _tools(self, nested: bool) -> list[dict[str, Any]]:
        out = []
        for tool in self.request.get("tools") or []:
            entry = {
                "type": tool.get("type", ""),
                "name": tool.get("name", ""),
                "description": tool.get("description"),
                "strict": tool.get("strict"),
                "parameters": tool.get("parameters"),
            }
            if nested and tool.get("tools"):
                entry["tools"] = tool["tools"]
            out.append(entry)
        return out

    def _text_format(self) -> dict[str, Any]:
        given = (self.request.get("text") or {}).get("format")
        if given is None:
            return {"type": "text"}
        out: dict[str, Any] = {"type": given.get("type", "")}
        for key in ("name", "schema", "strict"):
            if given.get(key) not in (None, ""):
                out[key] = _raw(given[key])
        return out

    def _common(self, status: str, output: list[Any], usage: Any, nested: bool) -> dict[str, Any]:
        req = self.request
        reasoning = req.get("reasoning") or {}
        reasoning_out: Any = None
        if reasoning.get("effort") or reasoning.get("summary"):
            reasoning_out = {k: reasoning.get(k) or None for k in ("effort", "summary")}
            if nested:
                reasoning_out = {k: v for k, v in reasoning_out.items() if v is not None}
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "completed_at": None,
            "status": status,
            "incomplete_details": None,
            "model": self.model,
            "previous_response_id": None,
            "instructions": req.get("instructions") or None,
            "output": output,
            "error": None,
            "tools": self._tools(nested),
            "tool_choice": "auto",
            "truncation": req.get("truncation") or "disabled",
            "parallel_tool_calls": True,
            "text": {"format": self._text_format()},
            "top_p": req.get("top_p", 1.0),
            "presence_penalty": 0,
            "frequency_penalty": 0,
            "top_logprobs": 0,
            "temperature": req.get("temperature", 1.0),
            "reasoning": reasoning_out,
            "usage": usage,
            "max_output_tokens": req.get("max_output_tokens"),
            "max_tool_calls": None,
            "store": False,
            "background": req.get("background", False),
            "service_tier": "default",
            "metadata": {},
            "safety_identifier": None,
            "prompt_cache_key": None,
        }

    # --- streaming ----------------------------------------------------------------------------

    def _event(self, name: str, **data: Any) -> bytes:
        data.update(type=name, sequence_number=self.seq)
        self.seq += 1
        payload = go_json(data, sort_keys=True).encode()
        return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        response = self._common("in_progress", [], None, nested=False)
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def _finish_reasoning(self) -> list[bytes]:
        if not self.reasoning_id:
            return []
        summary = [{"type": "summary_text", "text": self.thinking}]
        item = {
            "id": self.reasoning_id,
            "type": "reasoning",
            "summary": summary,
            "encrypted_content": self.thinking,
        }
        self.completed.append(item)
        index, rid, text = self.output_index, self.reasoning_id, self.thinking
        self.output_index += 1
        self.reasoning_id, self.thinking = "", ""
        return [
            self._event(
                "response.reasoning_summary_text.done",
                item_id=rid,
                output_index=index,
                summary_index=0,
                text=text,
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def piece(self, piece: Piece, created_ns: int) -> list[bytes]:
        """ResponsesStreamConverter.Process for one native chunk."""
        events = self._start()
        if piece.kind == "thinking":
            if not self.reasoning_id:
                self.reasoning_id = f"rs_{random.randrange(999999)}"
                item = {"id": self.reasoning_id, "type": "reasoning", "summary": []}
                events.append(
                    self._event(
                        "response.output_item.added", output_index=self.output_index, item=item
                    )
                )
            self.thinking += piece.text
            events.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    item_id=self.reasoning_id,
                    output_index=self.output_index,
                    summary_index=0,
                    delta=piece.text,
                )
            )
        elif piece.tool is not None:
            events += self._finish_reasoning()
            fc_id, args = f"fc_{random.randrange(999999)}_0", go_json(piece.tool.arguments)
            done = _call_item(fc_id, piece.tool, "completed", args)
            self.completed.append(done)
            idx = self.output_index
            events += [
                self._event(
                    "response.output_item.added",
                    output_index=idx,
                    item=_call_item(fc_id, piece.tool, "in_progress", ""),
                ),
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=fc_id,
                    output_index=idx,
                    delta=args,
                ),
                self._event(
                    "response.function_call_arguments.done",
                    item_id=fc_id,
                    output_index=idx,
                    arguments=args,
                ),
                self._event("response.output_item.done", output_index=idx, item=done),
            ]
            self.output_index += 1
            self.tools_sent = True
        elif piece.text and not self.tools_sent:
            events += self._finish_reasoning()
            if not self.text_started:
                self.text_started = True
                idx = self.output_index
                events.append(
                    self._event(
                        "response.output_item.added",
                        output_index=idx,
                        item=_message(self.item_id, "in_progress", None),
                    )
                )
                part = _text_part("")
                events.append(
                    self._event(
                        "response.content_part.added",
                        item_id=self.item_id,
                        output_index=idx,
                        content_index=0,
                        part=part,
                    )
                )
            self.text += piece.text
            events.append(
                self._event(
                    "response.output_text.delta",
                    item_id=self.item_id,
                    output_index=self.output_index,
                    content_index=0,
                    delta=piece.text,
                    logprobs=[],
                )
            )
        return events

    def done(self, result: Result) -> list[bytes]:
        """Closing events and response.completed (with usage); no [DONE]."""
        events = self._start() + self._finish_reasoning()
        output = list(self.completed)
        if self.text_started:
            item = _message(self.item_id, "completed", self.text)
            output.append(item)
            if not self.tools_sent:
                idx, mid = self.output_index, self.item_id
                events += [
                    self._event(
                        "response.output_text.done",
                        item_id=mid,
                        output_index=idx,
                        content_index=0,
                        text=self.text,
                        logprobs=[],
                    ),
                    self._event(
                        "response.content_part.done",
                        item_id=mid,
                        output_index=idx,
                        content_index=0,
                        part=_text_part(self.text),
                    ),
                    self._event("response.output_item.done", output_index=idx, item=item),
                ]
        response = self._common("completed", output, _usage(result), nested=False)
        response["completed_at"] = int(time.time())
        events.append(self._event("response.completed", response=response))
        return events

    # --- non-streamed -------------------------------------------------------------------------

    def aggregate(self, result: Result) -> Any:
        """ToResponse of the aggregated chat answer."""
        output: list[dict[str, Any]] = []
        thinking = result.text("thinking")
        if thinking:
            summary = [{"type": "summary_text", "text": thinking}]
            output.append(
                {
                    "id": f"rs_{self.id}",
                    "type": "reasoning",
                    "summary": summary,
                    "encrypted_content": thinking,
                }
            )
        calls = [p.tool for p in result.sent if p.tool is not None]
        for index, call in enumerate(calls):
            output.append(
                _call_item(f"fc_{self.id}_{index}", call, "completed", go_json(call.arguments))
            )
        if not calls:
            output.append(_message(self.item_id, "completed", result.text()))
        response = self._common("completed", output, _usage(result), nested=True)
        response["created_at"] = result.created_ns // 1_000_000_000
        response["completed_at"] = int(time.time())
        return response

    def midstream_error(self) -> list[bytes]:
        """The native error line decodes as an empty chunk: created/in_progress at most."""
        return self._start()

    def error(self, status: int, message: str, streaming: bool) -> HTTPResponse:
        """BaseWriter.writeError: the OpenAI error object, application/json."""
        return openai_error(status, message, CT_JSON)
