"""Redis key names: every key of one tenant carries the hash tag ``{t:<tenant_id>}``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


def _part(value: str) -> str:
    # ids normally pass through unchanged; ':', '{' and '}' are escaped so no id can
    # move the hash tag or collide with another scope's keys
    return quote(value, safe="-_.~@+=!$&*()")


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds the key names of one namespace.

    Layout, with ``<p>`` the scope prefix ``<ns>:{t:<tenant>}:t`` (tenant) or
    ``<ns>:{t:<tenant>}:k:<key>`` (key):

        <p>:rpm          zset  request_id -> admission ms       (rolling minute of requests)
        <p>:tpm          hash  second -> tokens                 (rolling minute of tokens)
        <p>:lease        zset  request_id -> expiry ms          (concurrency leases)
        <p>:resv         hash  request_id -> reserved tokens    (in-flight reservations)
        <p>:resx         zset  request_id -> expiry ms          (when each reservation lapses)
        <p>:d:<day>      int   settled tokens of a local day    (expires after 2 days)
        <p>:m:<month>    int   settled tokens of a local month  (expires after 40 days)
        <p>:total        int   settled tokens ever
        <p>:seeded       str   budget counters rebuilt from the ledger and trusted
        <p>:done         zset  request_id -> expiry ms          (recently settled; key scope only)
    """

    namespace: str

    def scopes(self, tenant_id: str, key_id: str) -> tuple[str, str]:
        """The (key scope, tenant scope) prefixes."""
        tenant = f"{self.namespace}:{{t:{_part(tenant_id)}}}"
        return f"{tenant}:k:{_part(key_id)}", f"{tenant}:t"

    def admit(self, tenant_id: str, key_id: str, day: str, month: str) -> list[str]:
        """KEYS of admit.lua."""
        return [
            f"{p}:{suffix}"
            for p in self.scopes(tenant_id, key_id)
            for suffix in (
                "rpm",
                "tpm",
                "lease",
                "resv",
                "resx",
                f"d:{day}",
                f"m:{month}",
                "total",
                "seeded",
            )
        ]

    def settle(self, tenant_id: str, key_id: str, day: str, month: str) -> list[str]:
        """KEYS of settle.lua."""
        key_scope, tenant_scope = self.scopes(tenant_id, key_id)
        return [
            f"{p}:{suffix}"
            for p in (key_scope, tenant_scope)
            for suffix in ("tpm", "lease", "resv", "resx", f"d:{day}", f"m:{month}", "total")
        ] + [f"{key_scope}:done"]

    def seed(self, tenant_id: str, key_id: str, day: str, month: str) -> list[str]:
        """KEYS of seed.lua."""
        return [
            f"{p}:{suffix}"
            for p in self.scopes(tenant_id, key_id)
            for suffix in ("seeded", f"d:{day}", f"m:{month}", "total")
        ]

    def usage(self, tenant_id: str, key_id: str, day: str, month: str) -> list[str]:
        """KEYS of usage.lua."""
        return [
            f"{p}:{suffix}"
            for p in self.scopes(tenant_id, key_id)
            for suffix in ("resv", "resx", f"d:{day}", f"m:{month}", "total")
        ]
