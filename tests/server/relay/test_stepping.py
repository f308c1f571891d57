"""Stepped streams: records that fit go out together, the budget stops between two records."""

from __future__ import annotations

import orjson

from limits import Ask, Limits, MemoryLimits, Subject, Usage
from server.accounting.meter import Meter
from server.context import RequestContext
from server.relay.framing import Records
from server.relay.stepping import Steps, send_records

NDJSON = "application/x-ndjson"


class Client:
    """What the client received, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.writes.append(data)


def _lines(count: int) -> list[bytes]:
    """`count` native stream records of one short token each."""
    line = {"model": "m", "message": {"role": "assistant", "content": "tok"}, "done": False}
    return [orjson.dumps(line) + b"\n" for _ in range(count)]


async def _admitted(limits: MemoryLimits, budget: int) -> RequestContext:
    subject = Subject("t", "k", Limits(daily_tokens=budget), Limits())
    await limits.seed(subject, Usage(0, 0, 0), Usage(0, 0, 0))  # nothing spent yet
    admission = await limits.admit(subject, Ask("r1", 0, None, "stream"))
    assert admission.allowed and admission.ticket is not None and admission.ticket.stepped
    return RequestContext(ticket=admission.ticket)


async def test_the_records_of_one_chunk_that_fit_go_out_in_one_write() -> None:
    limits = MemoryLimits(output_step=100)
    ctx = await _admitted(limits, 10_000)
    records = Records(Meter(capture=False), NDJSON, strip_usage=False)
    client = Client()
    raw = records.cut(b"".join(_lines(40)))
    assert await send_records(raw, records, Steps(limits, ctx, 100), client, ctx)
    assert client.writes == [b"".join(_lines(40))]
    assert records.meter.passed == 40 and ctx.first_byte is not None


async def test_records_wait_for_an_extension_and_stop_at_the_budget() -> None:
    limits = MemoryLimits(output_step=100)
    ctx = await _admitted(limits, 250)  # 100 reserved, then 100, then the last 50
    records = Records(Meter(capture=False), NDJSON, strip_usage=False)
    client = Client()
    steps = Steps(limits, ctx, 100)
    raw = records.cut(b"".join(_lines(400)))
    assert not await send_records(raw, records, steps, client, ctx)
    steps.cancel()
    sent = b"".join(client.writes)
    assert sent == b"".join(_lines(250))  # whole records, exactly the budget
    assert records.meter.passed == 250 == ctx.ticket.output_reserved  # type: ignore[union-attr]
    assert len(client.writes) >= 2  # what was ready went out before each wait
