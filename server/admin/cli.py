"""The neuronetz-gateway command line (python-fire): tenants, keys, limits, audit, usage, serving."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import fire
from tortoise.exceptions import BaseORMException

from config import Settings, SettingsError
from models import KeyStatus, TenantStatus
from server.admin import front, output, service
from server.admin.flags import (
    CliError,
    T,
    UsageError,
    changes,
    count,
    raw,
    required,
    switch,
    text,
    with_settings,
)
from server.admin.report_commands import ReportCommands
from server.admin.service import AdminError, Changes, Keep, Notify
from server.auth.invalidation import Invalidation, publish
from server.stores import database as db


def _notifier(settings: Settings) -> Notify:
    async def notify(message: Invalidation) -> bool:
        sent = await publish(settings, message)
        if settings.redis_url is not None and not sent:
            print(
                "warning: could not announce the change over Redis; gateway workers see it "
                "when their key cache entries expire (KEY_CACHE_TTL)",
                file=sys.stderr,
            )
        return sent

    return notify


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class Cli(ReportCommands):
    """neuronetz-gateway: manage tenants and keys, read the audit log and usage, run the gateway."""

    def _settings(self) -> Settings:
        try:
            return Settings.from_env()
        except SettingsError as exc:
            raise CliError(str(exc)) from exc

    def _call(self, work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
        """Run `work` in one event loop; turn expected failures into CliError."""
        settings = self._settings()
        try:
            return asyncio.run(work(settings))
        except AdminError as exc:
            raise CliError(str(exc)) from exc
        except (BaseORMException, OSError, asyncpg.PostgresError, sqlite3.Error) as exc:
            raise CliError(f"database: {_one_line(exc)}") from exc

    def _run(self, work: Callable[[Settings], Awaitable[T]]) -> T:
        """Apply pending migrations, connect, and run `work`."""

        async def go(settings: Settings) -> T:
            await db.migrate(settings)
            async with db.database(settings):
                return await work(settings)

        return self._call(go)

    @raw
    @with_settings
    def create_tenant(self, name: str | None = None, **settings: str) -> None:
        """Create a tenant; limits default to unlimited, --models to all models."""
        tenant_name = required(name, "--name")
        wanted = changes(settings)
        tenant = self._run(lambda s: service.create_tenant(tenant_name, wanted))
        print(f"created tenant {tenant.name} (id {tenant.id})")

    @raw
    @with_settings
    def create_key(
        self,
        tenant: str | None = None,
        name: str | None = None,
        expires_days: str | None = None,
        json: str | None = None,
        **settings: str,
    ) -> None:
        """Create a key; unset limits inherit the tenant's. Prints the key once."""
        tenant_name, key_name = required(tenant, "--tenant"), required(name, "--name")
        wanted = changes(settings)
        days = count(expires_days, "--expires-days", clearable=False)
        expires = None if isinstance(days, Keep) else days
        created = self._run(
            lambda s: service.create_key(tenant_name, key_name, wanted, expires_days=expires)
        )
        row = created.row
        if switch(json, "--json"):
            data = {"key": created.key, "prefix": row.prefix, "name": row.name}
            print(output.to_json({**data, "tenant": tenant_name}))
            return
        print(f"created key {row.name} for tenant {tenant_name}, prefix {row.prefix}")
        print(created.key)
        print("Store this key now: it is shown only this once and cannot be recovered.")

    @raw
    def list_tenants(self, json: str | None = None) -> None:
        """List tenants with their limits ('-' = unlimited)."""
        infos = self._run(lambda s: service.list_tenants())
        if switch(json, "--json"):
            print(output.to_json([output.tenant_json(i) for i in infos]))
        elif infos:
            print(output.tenants_table(infos))
        else:
            print("no tenants")

    @raw
    def list_keys(self, tenant: str | None = None, json: str | None = None) -> None:
        """List a tenant's keys with their effective limits (* = inherited)."""
        tenant_name = required(tenant, "--tenant")
        row, keys = self._run(lambda s: service.list_keys(tenant_name))
        now = datetime.now(UTC)
        if switch(json, "--json"):
            print(output.to_json([output.key_json(k, row, now) for k in keys]))
        elif keys:
            print(output.keys_table(keys, row, now))
        else:
            print(f"tenant {row.name} has no keys")

    @raw
    def revoke_key(self, prefix: str | None = None) -> None:
        """Revoke a key for good."""
        self._set_key(prefix, KeyStatus.REVOKED, "revoked")

    @raw
    def disable_key(self, prefix: str | None = None) -> None:
        """Disable a key until enable-key."""
        self._set_key(prefix, KeyStatus.DISABLED, "disabled")

    @raw
    def enable_key(self, prefix: str | None = None) -> None:
        """Enable a disabled key (a revoked key stays revoked)."""
        self._set_key(prefix, KeyStatus.ACTIVE, "enabled")

    def _set_key(self, prefix: str | None, status: KeyStatus, verb: str) -> None:
        wanted = required(prefix, "--prefix")
        key, changed = self._run(
            lambda s: service.set_key_status(wanted, status, notify=_notifier(s))
        )
        print(
            f"key {key.prefix} ({key.name}) {verb}"
            if changed
            else f"key {key.prefix} was already {status}"
        )

    @raw
    def disable_tenant(self, name: str | None = None) -> None:
        """Disable a tenant: none of its keys work until enable-tenant."""
        self._set_tenant(name, TenantStatus.DISABLED, "disabled")

    @raw
    def enable_tenant(self, name: str | None = None) -> None:
        """Enable a disabled tenant."""
        self._set_tenant(name, TenantStatus.ACTIVE, "enabled")

    def _set_tenant(self, name: str | None, status: TenantStatus, verb: str) -> None:
        wanted = required(name, "--name")
        tenant = self._run(lambda s: service.set_tenant_status(wanted, status, notify=_notifier(s)))
        print(f"tenant {tenant.name} {verb}")

    @raw
    @with_settings
    def set_limits(
        self, tenant: str | None = None, prefix: str | None = None, **settings: str
    ) -> None:
        """Change limits of a tenant or a key; `none` clears one (unlimited / inherit)."""
        tenant_name, key_prefix = text(tenant, "--tenant"), text(prefix, "--prefix")
        if (tenant_name is None) == (key_prefix is None):
            raise UsageError("set-limits needs either --tenant or --prefix")
        wanted = changes(settings)
        if wanted == Changes():
            raise UsageError("set-limits needs at least one limit, --models or prompt option")
        self._run(
            lambda s: service.set_limits(
                tenant=tenant_name, prefix=key_prefix, changes=wanted, notify=_notifier(s)
            )
        )
        what = f"tenant {tenant_name}" if tenant_name is not None else f"key {key_prefix}"
        print(f"updated {what}: {output.describe(wanted)}")

    def migrate(self) -> None:
        """Apply pending database migrations (idempotent; PostgreSQL takes an advisory lock)."""
        applied = self._call(db.migrate)
        print("applied " + ", ".join(applied) if applied else "database is up to date")

    def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        no_migrate: bool = False,
    ) -> None:
        """Run the gateway (migrates first unless --no-migrate)."""
        from server.serve import run

        run(self._settings(), host=host, port=port, workers=workers, migrate=not no_migrate)

    def probe_ollama(self, json: bool = False) -> None:
        """Check every configured Ollama backend."""
        from server.admin.backends import probe_ollama

        probe_ollama(self._settings(), json=json)

    @raw
    def pull_model(self, model: str | None = None, backend: str | None = None) -> None:
        """Pull a model onto one backend, directly with its token (shows Ollama's progress)."""
        from server.admin.pull import pull

        name = required(model, "MODEL")
        pull(self._settings(), name, text(backend, "--backend"), sys.stderr)

    def list_backends(self, json: bool = False) -> None:
        """List the configured Ollama backends."""
        from server.admin.backends import list_backends

        list_backends(self._settings(), json=json)


def _display(lines: Sequence[str], out: Any) -> None:
    """fire's help and usage output, written straight out instead of through a pager."""
    out.write("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """The console entry point: one `error: ...` line and exit 1 on a mistake, 2 on usage."""
    fire.core.Display = _display
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        shown = front.check(Cli, args)
        if shown is not None:
            print(shown)
            return
        fire.Fire(Cli(), command=args, name=front.PROG)
    except front.UsageError as exc:
        _fail(str(exc), code=2)
    except (CliError, SettingsError) as exc:  # settings also fail late: serve, SQLite paths
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, never a traceback
        _fail(f"unexpected {type(exc).__name__}: {_one_line(exc)}")


def _fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
