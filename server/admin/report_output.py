"""How the audit log, prompt logs, usage breakdowns and dead letters are shown: tables, JSON, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from models import PromptLog
from server.accounting.ledger import UsageTotals, overall, per_group
from server.accounting.queue import DeadLetter
from server.accounting.store import AUDIT_COLUMNS
from server.admin.output import ALL_KEYS, iso, table, totals_json
from server.admin.reports import AuditRow, UsageBreakdown

TOTAL = "(total)"
AUDIT_FIELDS = ("time", "tenant", *(c for c in AUDIT_COLUMNS if c != "time"))


def cell(value: object, width: int = 40) -> str:
    """A table cell: '-' for nothing, control characters escaped, cut to `width`."""
    if value is None or value == "":
        return "-"
    text = str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def jsonl(items: Iterable[dict[str, Any]]) -> str:
    """One compact JSON object a line."""
    return "\n".join(json.dumps(item, ensure_ascii=False) for item in items)


def to_csv(fields: Sequence[str], items: Iterable[dict[str, Any]]) -> str:
    """CSV with a header line; None is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow({k: "" if item[k] is None else item[k] for k in fields})
    return out.getvalue().rstrip("\n")


def audit_json(row: AuditRow) -> dict[str, Any]:
    """One audit event for --json, --jsonl and --csv."""
    e = row.event
    data = {name: getattr(e, name) for name in AUDIT_FIELDS if name not in ("time", "tenant")}
    return {"time": iso(e.time), "tenant": row.tenant, **data}


def _tokens(row: AuditRow) -> str:
    e = row.event
    if not (e.prompt_tokens or e.completion_tokens):
        return "-"
    return f"{'~' if e.tokens_estimated else ''}{e.prompt_tokens}+{e.completion_tokens}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


def audit_table(rows: Sequence[AuditRow]) -> str:
    """The audit log, newest first; '~' marks estimated tokens (prompt+completion)."""
    headers = (
        "TIME",
        "REQUEST ID",
        "CLIENT ID",
        "TENANT",
        "KEY",
        "SURFACE",
        "METHOD",
        "PATH",
        "MODEL",
        "BACKEND",
        "STATUS",
        "LATENCY",
        "TTFB",
        "TOKENS",
        "CLIENT",
        "LIMIT",
    )
    lines = []
    for row in rows:
        e = row.event
        lines.append(
            [
                e.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                e.request_id,
                cell(e.client_request_id, 24),
                cell(row.tenant, 20),
                cell(e.key_prefix),
                e.surface,
                cell(e.method, 10),
                cell(e.path, 48),
                cell(e.model, 24),
                cell(e.backend, 16),
                str(e.status),
                _ms(e.latency_ms),
                _ms(e.ttfb_ms),
                _tokens(row),
                cell(e.client_ip),
                cell(e.limit),
            ]
        )
    return table(headers, lines)


def prompt_json(log: PromptLog) -> dict[str, Any]:
    """One stored prompt log, in full."""
    return {
        "request_id": log.request_id,
        "created_at": iso(log.created_at),
        "expires_at": iso(log.expires_at),
        "request_body": log.request_body,
        "response_text": log.response_text,
    }


def prompts_table(logs: Sequence[PromptLog]) -> str:
    """Prompt logs, newest first, each text cut to one short line (--json shows them whole)."""
    headers = ("CREATED", "REQUEST ID", "EXPIRES", "REQUEST", "RESPONSE")
    rows = [
        [
            log.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            log.request_id,
            log.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"),
            cell(log.request_body, 60),
            cell(log.response_text, 60),
        ]
        for log in logs
    ]
    return table(headers, rows)


def _span(report: UsageBreakdown) -> str:
    if report.since is None and report.until is None:
        return "all time"
    since = "start" if report.since is None else report.since.isoformat()
    until = "today" if report.until is None else report.until.isoformat()
    return f"{since} .. {until}"


def breakdown_items(report: UsageBreakdown) -> list[dict[str, Any]]:
    """One item per key and group, then (for a tenant) one per group over all keys, then the total."""
    by = report.by
    items = []
    for row in report.rows:
        key = report.keys.get(row.key_id)
        name = None if key is None else key.name
        prefix = None if key is None else key.prefix
        items.append({by: row.group, "key": prefix, "name": name, **totals_json(row.totals)})
    if report.key is None:
        for group, totals in per_group(report.rows):
            items.append({by: group, "key": ALL_KEYS, "name": None, **totals_json(totals)})
    items.append({by: TOTAL, "key": ALL_KEYS, "name": None, **totals_json(overall(report.rows))})
    return items


def breakdown_csv(report: UsageBreakdown) -> str:
    """The breakdown as CSV: per key and group, per group over all keys, and the total."""
    fields = (report.by, "key", "name", "requests", "prompt_tokens", "completion_tokens", "tokens")
    return to_csv(fields, breakdown_items(report))


def breakdown_json(report: UsageBreakdown, timezone: str) -> dict[str, Any]:
    """The breakdown for --json: rows per key, totals per group, and the total."""
    by = report.by
    rows = [
        {by: r.group, "key": report.keys[r.key_id].prefix, **totals_json(r.totals)}
        for r in report.rows
        if r.key_id in report.keys
    ]
    return {
        "tenant": report.tenant.name,
        "key": None if report.key is None else report.key.prefix,
        "by": by,
        "since": None if report.since is None else report.since.isoformat(),
        "until": None if report.until is None else report.until.isoformat(),
        "timezone": timezone,
        "rows": rows,
        "totals": [{by: g, **totals_json(t)} for g, t in per_group(report.rows)],
        "total": totals_json(overall(report.rows)),
    }


def breakdown_table(report: UsageBreakdown, timezone: str) -> str:
    """The breakdown as a table; for a tenant, a row over all keys where a group has several."""
    who = f"tenant {report.tenant.name}"
    if report.key is not None:
        who = f"key {report.key.prefix} ({report.key.name}) of {who}"
    title = f"usage of {who} by {report.by}, {_span(report)} ({timezone})"
    several = report.key is None
    headers = [report.by.upper(), *(["KEY", "NAME"] if several else [])]
    headers += ["REQUESTS", "PROMPT", "COMPLETION", "TOKENS"]
    groups = dict(per_group(report.rows))
    keys_in: dict[str, int] = {}
    for r in report.rows:
        keys_in[r.group] = keys_in.get(r.group, 0) + 1
    lines: list[list[str]] = []
    for i, r in enumerate(report.rows):
        key = report.keys.get(r.key_id)
        who_cells = [cell(key and key.prefix), cell(key and key.name, 24)] if several else []
        lines.append([cell(r.group or "(none)"), *who_cells, *_numbers(r.totals)])
        last_of_group = i + 1 == len(report.rows) or report.rows[i + 1].group != r.group
        if several and last_of_group and keys_in[r.group] > 1:
            lines.append([cell(r.group or "(none)"), ALL_KEYS, "", *_numbers(groups[r.group])])
    total_cells = [ALL_KEYS, ""] if several else []
    lines.append([TOTAL, *total_cells, *_numbers(overall(report.rows))])
    return f"{title}\n{table(headers, lines)}"


def _numbers(totals: UsageTotals) -> list[str]:
    counts = (totals.requests, totals.prompt_tokens, totals.completion_tokens, totals.tokens)
    return [str(n) for n in counts]


def _request_id(data: bytes) -> str | None:
    try:
        event = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    rid = event.get("request_id") if isinstance(event, dict) else None
    return rid if isinstance(rid, str) else None


def _dead_time(letter: DeadLetter) -> datetime:
    return datetime.fromtimestamp(int(letter.id.split("-", 1)[0]) / 1000, UTC)


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    """One dead letter: where, when, why, and the event (parsed, or its text if it is no JSON)."""
    text = letter.data.decode("utf-8", errors="replace")
    try:
        event: Any = json.loads(text)
    except ValueError:
        event = None
    if isinstance(event, dict):
        event.pop("prompt", None)  # a prompt log stays out of the operator's terminal
    return {
        "time": iso(_dead_time(letter)),
        "shard": letter.shard,
        "id": letter.id,
        "from": letter.origin,
        "why": letter.why,
        "request_id": _request_id(letter.data),
        "event": event,
        "raw": None if event is not None else text,
    }


def dead_letters_table(letters: Sequence[DeadLetter]) -> str:
    """Dead letters, newest first."""
    headers = ("TIME", "SHARD", "ENTRY", "REQUEST ID", "WHY")
    rows = [
        [
            _dead_time(d).strftime("%Y-%m-%dT%H:%M:%SZ"),
            str(d.shard),
            d.id,
            cell(_request_id(d.data)),
            cell(d.why, 100),
        ]
        for d in letters
    ]
    return table(headers, rows)
