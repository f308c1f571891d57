"""The CLI's reading commands: audit, prompts, usage, and purge-prompts (mixed into Cli)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, cast

from config import Settings
from limits import REDIS_ERRORS
from server.accounting.ledger import BREAKDOWNS, Breakdown
from server.accounting.queue import read_dead_letters
from server.admin import output, report_output, reports, service
from server.admin.flags import (
    CliError,
    T,
    UsageError,
    choice,
    day,
    moment,
    output_format,
    raw,
    required,
    text,
    whole,
)
from server.stores.redis_clients import open_redis

DEAD_LETTER_LIMIT = 100
TABLE_LIMIT = 100  # rows of an audit table when --limit is not given


class ReportCommands:
    """What an operator reads: the audit log, prompt logs and usage; and the prompt purge."""

    def _settings(self) -> Settings:
        raise NotImplementedError

    def _call(self, work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
        raise NotImplementedError

    def _run(self, work: Callable[[Settings], Awaitable[T]]) -> T:
        raise NotImplementedError

    @raw
    def audit(
        self,
        tenant: str | None = None,
        prefix: str | None = None,
        since: str | None = None,
        until: str | None = None,
        status: str | None = None,
        model: str | None = None,
        limit: str | None = None,
        json: str | None = None,
        jsonl: str | None = None,
        csv: str | None = None,
        dead_letter: str | None = None,
    ) -> None:
        """The audit log, newest first (--dead-letter: the events the database refused).

        --since and --until take ISO 8601 times (UTC unless given); a bare date is a whole day,
        so --since 2026-11-01 --until 2026-11-30 is all of November's first 30 days.
        """
        fmt = output_format(json=json, jsonl=jsonl, csv=csv)
        if output_format(dead_letter=dead_letter) != "table":
            if fmt == "csv":
                raise CliError("--dead-letter shows a table, --json or --jsonl")
            self._dead_letters(whole(limit, "--limit", 1, reports.MAX_LIMIT), fmt)
            return
        query = reports.AuditQuery(
            tenant=text(tenant, "--tenant"),
            prefix=text(prefix, "--prefix"),
            since=moment(since, "--since"),
            until=moment(until, "--until", end=True),
            status=whole(status, "--status", 100, 599),
            model=text(model, "--model"),
            # a table for reading shows the newest 100; a format for machines, everything
            limit=whole(limit, "--limit", 1, reports.MAX_LIMIT)
            or (TABLE_LIMIT if fmt == "table" else reports.MAX_LIMIT),
        )
        rows = self._run(lambda s: reports.audit_events(query))
        if len(rows) == query.limit and limit is None:
            print(f"(the newest {query.limit} shown; --limit N for more)", file=sys.stderr)
        items = [report_output.audit_json(r) for r in rows]
        if fmt == "json":
            print(output.to_json(items))
        elif fmt == "jsonl":
            if items:
                print(report_output.jsonl(items))
        elif fmt == "csv":
            print(report_output.to_csv(report_output.AUDIT_FIELDS, items))
        elif rows:
            print(report_output.audit_table(rows))
        else:
            print("no audit events match")

    def _dead_letters(self, limit: int | None, fmt: str) -> None:
        async def read(settings: Settings) -> list[Any]:
            if settings.redis_url is None:
                raise CliError(
                    "dead letters are kept in Redis and REDIS_URL is not set (without Redis the "
                    "gateway logs each one: look for 'audit dead letter' in its log)"
                )
            client = open_redis(settings, timeout=10.0, connect_timeout=2.0, retries=2)
            try:
                return await read_dead_letters(
                    client, settings.redis_namespace, limit=limit or DEAD_LETTER_LIMIT
                )
            except REDIS_ERRORS as exc:
                raise CliError(f"redis: {' '.join(str(exc).split())[:300]}") from exc
            finally:
                await client.aclose()

        letters = self._call(read)
        items = [report_output.dead_letter_json(d) for d in letters]
        if fmt == "json":
            print(output.to_json(items))
        elif fmt == "jsonl":
            if items:
                print(report_output.jsonl(items))
        elif letters:
            print(report_output.dead_letters_table(letters))
        else:
            print("no dead letters")

    @raw
    def prompts(
        self,
        prefix: str | None = None,
        since: str | None = None,
        limit: str | None = None,
        json: str | None = None,
    ) -> None:
        """Prompt logs a key stored (keys with --log-prompts only), newest first."""
        key_prefix = required(prefix, "--prefix")
        start = moment(since, "--since")
        count = whole(limit, "--limit", 1, reports.MAX_LIMIT) or 20
        fmt = output_format(json=json)
        key, logs = self._run(lambda s: reports.prompt_logs(key_prefix, since=start, limit=count))
        if fmt == "json":
            print(output.to_json([report_output.prompt_json(log) for log in logs]))
        elif logs:
            print(report_output.prompts_table(logs))
        else:
            print(f"no prompt logs for key {key.prefix}")

    @raw
    def usage(
        self,
        tenant: str | None = None,
        prefix: str | None = None,
        by: str | None = None,
        since: str | None = None,
        until: str | None = None,
        json: str | None = None,
        csv: str | None = None,
    ) -> None:
        """Usage from the ledger (budget time zone): today, this month and in all time against
        the budgets, or with --by day|month|model per key and in total (--since/--until: dates).
        """
        tenant_name, key_prefix = text(tenant, "--tenant"), text(prefix, "--prefix")
        if (tenant_name is None) == (key_prefix is None):
            raise UsageError("usage needs either --tenant or --prefix")
        breakdown = cast("Breakdown | None", choice(by, "--by", BREAKDOWNS))
        first, last = day(since, "--since"), day(until, "--until")
        fmt = output_format(json=json, csv=csv)
        zone = self._settings().budget_timezone
        if breakdown is None:
            if first is not None or last is not None:
                raise CliError("--since and --until go with --by day|month|model")
            report = self._run(
                lambda s: service.usage(
                    tenant=tenant_name, prefix=key_prefix, today=datetime.now(s.tz).date()
                )
            )
            if fmt == "json":
                print(output.to_json(output.usage_json(report, zone)))
            elif fmt == "csv":
                print(output.usage_csv(report))
            else:
                print(output.usage_table(report, zone))
            return
        kind: Breakdown = breakdown
        split = self._run(
            lambda s: reports.usage_breakdown(
                tenant=tenant_name, prefix=key_prefix, by=kind, since=first, until=last
            )
        )
        if fmt == "json":
            print(output.to_json(report_output.breakdown_json(split, zone)))
        elif fmt == "csv":
            print(report_output.breakdown_csv(split))
        else:
            print(report_output.breakdown_table(split, zone))

    def purge_prompts(self) -> None:
        """Delete every prompt log past its TTL now, in bounded batches (the gateway does it too)."""
        removed = self._run(lambda s: reports.purge_prompts(datetime.now(UTC)))
        print(f"purged {removed} expired prompt log{'' if removed == 1 else 's'}")
