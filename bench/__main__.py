"""`python -m bench`: start everything, measure side by side, print the table, write the JSON."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import litellm_proxy, machine, report
from bench.measure import Bench, Plan
from bench.options import Options, parse
from bench.paced import paced_check
from bench.procs import BenchError, Supervisor
from bench.pyspy import profile
from bench.scenarios import PACED, SCENARIOS, Scenario
from bench.soak import soak
from bench.stack import ROOT, on_fake, start_stack
from bench.wrk import Wrk, ensure_wrk


def _scenarios(opts: Options) -> list[Scenario]:
    if opts.scenarios is None:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in opts.scenarios if n not in known]
    if unknown:
        raise BenchError(f"unknown scenario(s) {unknown}; known: {list(known)}")
    return [known[n] for n in opts.scenarios]


def _pin_self(cpus: str | None) -> None:
    """The bench's own clients (first chunk, paced streams) run beside wrk, not the target."""
    if cpus is not None:
        chosen: set[int] = set()
        for part in cpus.split(","):
            lo, _, hi = part.partition("-")
            chosen |= set(range(int(lo), int(hi or lo) + 1))
        os.sched_setaffinity(0, chosen)


def run(opts: Options) -> dict[str, object]:
    """The whole run; every process it starts is stopped before it returns or raises."""
    scenarios = _scenarios(opts)
    wrk_exe = ensure_wrk()
    _pin_self(opts.load_cpus)
    info, versions = machine.describe(ROOT), machine.versions(wrk_exe)
    workdir = Path(tempfile.mkdtemp(prefix="nzgw-bench-"))
    started = time.monotonic()
    data: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "versions": versions,
        "options": {k: str(v) for k, v in vars(opts).items()},
    }
    with Supervisor(workdir, pin=opts.load_cpus is not None) as sup:
        sup.on_exit(lambda: shutil.rmtree(workdir, ignore_errors=True))
        sup.logs_on_failure = opts.out.parent / "logs"
        stack = start_stack(
            sup,
            cpus_load=opts.load_cpus,
            cpus_target=opts.target_cpus,
            redis_url=opts.redis_url,
            redis_port=opts.redis_port,
            admin_db_url=opts.database_url,
            workers=opts.workers,
            nolimits=opts.nolimits,
            audit_off=opts.audit_off,
            replay=opts.upstream == "replay",
        )
        targets = [stack.upstream, *stack.targets]
        if opts.litellm:
            targets.append(
                litellm_proxy.start_litellm(
                    sup, stack.upstream, opts.target_cpus, opts.litellm_spec
                )
            )
            versions["litellm"] = litellm_proxy.version()
        versions |= {"redis-server": stack.redis.version(), "postgresql": stack.postgres_version}
        print(f"machine: {machine.header(info, versions)}", file=sys.stderr, flush=True)
        gateway = next(t for t in targets if t.name == "gateway")
        wrk = Wrk(sup, opts.load_cpus)
        plan = Plan(
            opts.rounds,
            opts.seconds,
            opts.latency_seconds,
            opts.concurrency,
            opts.ttfb_requests,
            opts.warmup_seconds,
        )
        bench = Bench(stack, targets, wrk, plan)
        print(f"targets: {', '.join(t.name for t in targets)}; warming up", file=sys.stderr)
        bench.warm_up(scenarios)
        bench.run(scenarios)
        on_off = report.audit_on_off(bench, scenarios)
        data |= {
            "replay": stack.replay_stats(),
            "redis": {
                "private": stack.redis.private,
                "namespace_keys_after_table": stack.redis.namespace_keys(),
                "used_memory_mb_after_table": round(stack.redis.used_memory_mb(), 2),
            },
            "peak_rss_mb": bench.peak_rss(),
            "scenarios": report.results(bench, scenarios),
            "audit_on_vs_off": on_off,
        }
        report.print_table(bench, scenarios, stack.redis.private)
        report.print_audit_on_off(on_off)
        if opts.profile:
            print("profile: py-spy", file=sys.stderr, flush=True)
            data["profile"] = [
                profile(
                    gateway,
                    s,
                    wrk,
                    seconds=opts.profile_seconds,
                    concurrency=opts.concurrency,
                    out_dir=opts.out.parent,
                    cpus=opts.load_cpus,
                )
                for s in scenarios
                if s.name in ("v1-chat", "v1-chat-stream")
            ]
            report.print_profile(data["profile"], opts.concurrency)
        if opts.soak:
            print(f"soak: {opts.soak:.0f} s", file=sys.stderr, flush=True)
            data["soak"] = soak(
                stack, gateway, wrk, seconds=opts.soak, concurrency=opts.soak_concurrency
            )
            report.print_soak(data["soak"])
        if opts.paced:
            print("paced: 64 streams x 64 chunks at 20 ms", file=sys.stderr, flush=True)
            on_the_fake = [stack.fake, *on_fake(sup, stack, opts.workers, opts.target_cpus)]
            for t in on_the_fake:  # key cache, pools; the fake is not paced yet
                wrk.run(t, [PACED], 8, opts.warmup_seconds)
            paced = paced_check(stack, on_the_fake, rounds=opts.paced_rounds)
            data["paced"] = paced
            report.print_paced(paced)
    data["duration_s"] = round(time.monotonic() - started, 1)
    info["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.write_json(opts.out, data)
    print(f"\nmachine: {machine.header(info, versions)}")
    print(f"results: {opts.out}; the run took {data['duration_s']} s")
    return data


def main() -> None:
    """Entry point: exit 1 with one line on a bench failure, 130 on Ctrl-C."""
    opts = parse()
    try:
        run(opts)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
