"""The bench's command line: what runs, how long, where it is pinned, where results go."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from bench.litellm_proxy import SPEC

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
FULL = {
    "rounds": 3,
    "seconds": 10.0,
    "latency_seconds": 6.0,
    "ttfb_requests": 300,
    "warmup_seconds": 2.0,
    "paced_rounds": 3,
}
QUICK = {
    "rounds": 1,
    "seconds": 2.0,
    "latency_seconds": 1.0,
    "ttfb_requests": 50,
    "warmup_seconds": 1.0,
    "paced_rounds": 1,
}


@dataclass(frozen=True)
class Options:
    """Parsed options, durations filled in from --quick or the full run."""

    rounds: int
    seconds: float
    latency_seconds: float
    ttfb_requests: int
    warmup_seconds: float
    paced_rounds: int
    concurrency: int
    workers: int
    scenarios: list[str] | None
    litellm: bool
    litellm_spec: str
    nolimits: bool
    audit_off: bool
    redis_url: str | None
    redis_port: int | None
    database_url: str
    load_cpus: str | None
    target_cpus: str | None
    paced: bool
    soak: float
    soak_concurrency: int
    profile: bool
    profile_seconds: float
    out: Path
    quick: bool
    upstream: str


def parse(argv: list[str] | None = None) -> Options:
    """Parse the command line."""
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Side by side: the fake Ollama direct, a bare Sanic relay, the gateway (and LiteLLM's "
            "proxy with --litellm): req/s, added latency, CPU and Redis per request, peak RSS."
        ),
    )
    ap.add_argument("--quick", action="store_true", help="short runs (about 2.5 minutes)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (3; quick 1)")
    ap.add_argument("--seconds", type=float, help="each throughput run (10; quick 2)")
    ap.add_argument("--latency-seconds", type=float, help="each c=1 run (6; quick 1)")
    ap.add_argument("--ttfb-requests", type=int, help="first-chunk requests per run (300; 50)")
    ap.add_argument("--concurrency", type=int, default=32, help="the saturating concurrency")
    ap.add_argument(
        "--upstream",
        choices=("replay", "fake"),
        default="replay",
        help=(
            "what the relays call: bench/replay.py replaying the fake's answers (cheap enough to "
            "saturate the gateway), or the fake itself (caps everything near its own req/s)"
        ),
    )
    ap.add_argument("--workers", type=int, default=1, help="gateway workers")
    ap.add_argument("--scenarios", help="comma list, e.g. v1-chat,api-chat-stream (all)")
    ap.add_argument("--litellm", action="store_true", help="add LiteLLM's proxy (own venv)")
    ap.add_argument("--litellm-spec", default=SPEC, help=f"what to pip install ({SPEC})")
    ap.add_argument(
        "--nolimits",
        action="store_true",
        help="add the gateway with limits off (bench/nolimits_serve.py)",
    )
    ap.add_argument(
        "--audit-off",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the gateway with its audit off beside it (bench/auditoff_serve.py; on by default)",
    )
    redis = ap.add_mutually_exclusive_group()
    redis.add_argument("--redis-url", help="use this running Redis (shared: a private namespace)")
    redis.add_argument(
        "--redis-port",
        type=int,
        help="port of the private redis-server started for the run (a free one)",
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL admin URL; the run creates and drops its own database",
    )
    ap.add_argument("--load-cpus", default="0", help="CPUs of the fake, wrk and Redis (0)")
    ap.add_argument("--target-cpus", default="1", help="CPUs of the measured servers (1)")
    ap.add_argument("--no-pin", action="store_true", help="no taskset pinning")
    ap.add_argument("--no-paced", action="store_true", help="skip the 64 paced streams check")
    ap.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="add an RSS soak of mixed traffic through the gateway",
    )
    ap.add_argument("--soak-concurrency", type=int, default=16)
    ap.add_argument("--profile", action="store_true", help="add a py-spy profile under load")
    ap.add_argument("--profile-seconds", type=float, default=15.0)
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results ({RESULTS})")
    a = ap.parse_args(argv)
    base = QUICK if a.quick else FULL

    def pick(name: str) -> float:
        given = getattr(a, name, None)
        return float(given if given is not None else base[name])

    pin = not a.no_pin and (os.cpu_count() or 1) >= 2
    return Options(
        rounds=int(pick("rounds")),
        seconds=pick("seconds"),
        latency_seconds=pick("latency_seconds"),
        ttfb_requests=int(pick("ttfb_requests")),
        warmup_seconds=pick("warmup_seconds"),
        paced_rounds=int(pick("paced_rounds")),
        concurrency=a.concurrency,
        workers=a.workers,
        scenarios=a.scenarios.split(",") if a.scenarios else None,
        litellm=a.litellm,
        litellm_spec=a.litellm_spec,
        nolimits=a.nolimits,
        audit_off=a.audit_off,
        redis_url=a.redis_url,
        redis_port=a.redis_port,
        database_url=a.database_url,
        load_cpus=a.load_cpus if pin else None,
        target_cpus=a.target_cpus if pin else None,
        paced=not a.no_paced,
        soak=a.soak,
        soak_concurrency=a.soak_concurrency,
        profile=a.profile,
        profile_seconds=a.profile_seconds,
        out=a.out,
        quick=a.quick,
        upstream=a.upstream,
    )
