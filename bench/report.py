"""The report: a table per scenario on stdout, the issue's targets checked, everything as JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.measure import Bench
from bench.scenarios import Scenario
from bench.stack import AUDIT_OFF

COLUMNS = [  # (figure, heading, format)
    ("rps", "req/s", "{:8.0f}"),
    ("of_relay", "%relay", "{:6.0%}"),
    ("rps_per_core", "req/s/core", "{:10.0f}"),
    ("cpu_us", "CPU µs/req", "{:10.0f}"),
    ("cpu_util", "core", "{:5.0%}"),
    ("redis_us", "Redis cmd µs", "{:12.1f}"),
    ("redis_proc_us", "Redis CPU µs", "{:12.1f}"),
    ("redis_calls", "calls", "{:5.1f}"),
    ("p50_ms", "p50 ms", "{:6.2f}"),
    ("added_p50_ms", "+p50", "{:+6.2f}"),
    ("p99_ms", "p99 ms", "{:6.2f}"),
    ("added_p99_ms", "+p99", "{:+6.2f}"),
    ("ttfb_p50_ms", "1st ms", "{:6.2f}"),
    ("added_ttfb_p50_ms", "+1st", "{:+6.2f}"),
]


def cell_figures(bench: Bench, s: Scenario, name: str) -> dict[str, float | None]:
    """Medians over rounds of one target on one scenario, with its share of the relay's req/s."""
    cell = bench.cells[(s.name, name)]
    figures = {k: cell.median(k) for k, _, _ in COLUMNS if k != "of_relay"}
    relay = bench.cells[(s.name, "bare relay")].median("rps")
    rps = figures["rps"]
    figures["of_relay"] = rps / relay if rps and relay else None
    return figures


def table(bench: Bench, scenarios: list[Scenario]) -> str:
    """The side-by-side table, one block per scenario."""
    width = 22
    head = f"{'target':{width}}" + " ".join(f"{h:>{len(f.format(0))}}" for _, h, f in COLUMNS)
    out = []
    for s in scenarios:
        out.append(f"\n{s.path} {'streamed' if s.stream else 'non-streamed'} ({s.name})")
        out.append(head)
        for t in bench.targets:
            if not t.supports(s):
                continue
            figs = cell_figures(bench, s, t.name)
            row = f"{t.name:{width}}"
            for k, _, f in COLUMNS:
                v = figs.get(k)
                row += " " + (f.format(v) if v is not None else " " * (len(f.format(0)) - 1) + "-")
            errors = bench.cells[(s.name, t.name)].errors
            out.append(row + (f"  ({errors} errors)" if errors else ""))
    return "\n".join(out)


def targets_check(bench: Bench, scenarios: list[Scenario]) -> list[str]:
    """Issue 11's targets, each with the figure seen (medians, gateway row)."""
    lines = []
    for s in scenarios:
        g = cell_figures(bench, s, "gateway")
        lite = bench.cells[(s.name, "LiteLLM proxy")].median("rps_per_core")
        want = 1500 if s.stream else 2000
        per_core = g["rps_per_core"]
        checks = [
            (f"req/s per core >= {want}", per_core, per_core is not None and per_core >= want),
            ("req/s >= 1/3 relay", g["of_relay"], (g["of_relay"] or 0) >= 1 / 3),
            ("added p50 <= 1 ms", g["added_p50_ms"], (g["added_p50_ms"] or 0) <= 1),
            ("added p99 <= 3 ms", g["added_p99_ms"], (g["added_p99_ms"] or 0) <= 3),
            ("Redis <= 40 µs/req", g["redis_us"], (g["redis_us"] or 0) <= 40),
        ]
        if s.stream:
            checks.append(
                (
                    "added 1st chunk <= 1 ms",
                    g["added_ttfb_p50_ms"],
                    (g["added_ttfb_p50_ms"] or 0) <= 1,
                )
            )
        if lite and per_core:
            checks.append(("req/s/core >= 20x LiteLLM", per_core / lite, per_core / lite >= 20))
        parts = [f"{label}: {_fmt(v)} {'ok' if ok else 'MISSED'}" for label, v, ok in checks]
        lines.append(f"{s.name}: " + "; ".join(parts))
    return lines


AUDIT_FIGURES = [  # (figure, label, unit): what the audit adds, gateway minus its audit-off row
    ("p50_ms", "p50 c=1", " ms"),
    ("p99_ms", "p99 c=1", " ms"),
    ("rps", "req/s", ""),
    ("cpu_us", "CPU", " µs/req"),
    ("redis_us", "Redis cmd", " µs/req"),
]


def audit_on_off(bench: Bench, scenarios: list[Scenario]) -> dict[str, object] | None:
    """Per scenario and figure: the gateway's median (audit on), the audit-off row's, their
    difference per round (the rows run in the same round, side by side) and its median, and
    the noise: the larger of the two rows' spreads (max - min) over the rounds (None with one
    round). None when the run has no audit-off row."""
    if not any(t.name == AUDIT_OFF for t in bench.targets):
        return None
    out: dict[str, object] = {}
    for s in scenarios:
        on, off = bench.cells[(s.name, "gateway")], bench.cells[(s.name, AUDIT_OFF)]
        per: dict[str, object] = {}
        for name, _, _ in AUDIT_FIGURES:
            a, b = on.values.get(name, []), off.values.get(name, [])
            diffs = [x - y for x, y in zip(a, b, strict=False)]
            spreads = [max(v) - min(v) for v in (a, b) if len(v) > 1]
            per[name] = {
                "on": on.median(name),
                "off": off.median(name),
                "added": statistics.median(diffs) if diffs else None,
                "added_per_round": diffs,
                "noise": max(spreads) if spreads else None,
            }
        out[s.name] = per
    return out


def print_audit_on_off(data: dict[str, object] | None) -> None:
    """What the audit adds, per scenario (medians; per-round differences; the noise)."""
    if data is None:
        return
    print(
        "\naudit on versus off (gateway minus 'gateway, audit off', same run; median over "
        "rounds [each round's]; noise = the larger round-to-round spread of the two rows):"
    )
    for scenario, figures in data.items():
        assert isinstance(figures, dict)
        parts = []
        for name, label, unit in AUDIT_FIGURES:
            f = figures[name]
            if f["added"] is None:
                continue
            rounds = " ".join(_signed(d) for d in f["added_per_round"])
            part = f"{label} {_signed(f['added'])}{unit} [{rounds}]"
            if f["noise"] is not None:
                within = abs(f["added"]) <= f["noise"]
                part += f" noise {_fmt(f['noise'])}: {'within' if within else 'ABOVE'}"
            parts.append(part)
        print(f"  {scenario}: " + "; ".join(parts))


def _signed(v: float) -> str:
    return f"{v:+.2f}" if abs(v) < 100 else f"{v:+.0f}"


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


def write_json(path: Path, data: dict[str, object]) -> None:
    """Write the results (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def results(bench: Bench, scenarios: list[Scenario]) -> dict[str, object]:
    """Per scenario and target: medians, and every round's values."""
    out: dict[str, object] = {}
    for s in scenarios:
        per: dict[str, object] = {}
        for t in bench.targets:
            if t.supports(s):
                cell = bench.cells[(s.name, t.name)]
                per[t.name] = {
                    "median": cell_figures(bench, s, t.name),
                    "rounds": dict(cell.values),
                    "errors": cell.errors,
                    "redis_top_commands": cell.redis_top,
                }
        out[s.name] = {"path": s.path, "stream": s.stream, "body": s.body, "targets": per}
    return out


def print_table(bench: Bench, scenarios: list[Scenario], private_redis: bool) -> None:
    """The table, the issue's targets and the peak RSS, on stdout."""
    print(table(bench, scenarios))
    if not private_redis:
        print("\n(Redis is shared: its figures include whatever else used it meanwhile)")
    print("\nissue 11 targets (gateway, medians):")
    for line in targets_check(bench, scenarios):
        print("  " + line)
    peaks = bench.peak_rss()
    print(
        "\npeak RSS, MiB (VmHWM summed over each target's processes): "
        + ", ".join(f"{k} {v['sum_mb']:.0f}" for k, v in peaks.items())
    )


def print_paced(paced: dict[str, object]) -> None:
    """The paced streams' per-chunk delays."""
    print(
        f"\n{paced['streams']} concurrent paced /api/chat streams ({paced['chunks_per_stream']} "
        f"chunks at {paced['pace_ms']} ms, on the fake itself), per chunk, from the fake "
        "writing it to the client reading it:"
    )
    for name, p in paced.items():
        if isinstance(p, dict):
            print(
                f"  {name:16} p50 {p['p50_ms']:6.2f} ms  p99 {p['p99_ms']:6.2f} ms  "
                f"max {p['max_ms']:7.2f} ms  within {paced['limit_ms']} ms: "
                f"{p['within_limit']:7.2%} of {p['chunks']:.0f} chunks; first chunk p50 "
                f"{p['first_chunk_p50_ms']:.1f} ms, max {p['first_chunk_max_ms']:.1f} ms"
            )


def print_profile(profiles: object, concurrency: int) -> None:
    """py-spy's biggest self-time frames, per profiled scenario."""
    assert isinstance(profiles, list)
    for p in profiles:
        print(
            f"\npy-spy, the gateway under {p['scenario']} at c={concurrency}, {p['seconds']:.0f}"
            f" s ({p['folded']}), biggest self time:"
        )
        for frame, share in p["top_self"][:5]:
            print(f"  {share:6.1%}  {frame}")
        print("  biggest inclusive, own code:")
        for frame, share in p["top_inclusive_own_code"][:5]:
            print(f"  {share:6.1%}  {frame}")


def print_soak(s: object) -> None:
    """The soak's RSS per worker and Redis memory."""
    assert isinstance(s, dict)
    print(
        f"\nsoak {s['seconds']:.0f} s, mixed traffic at c={s['concurrency']}: {s['rps']:.0f} "
        f"req/s, {s['errors']} errors; RSS per worker flat within {s['limit']:.0%}: "
        f"{'yes' if s['flat'] else 'NO'}"
    )
    for w in s["workers"]:
        print(
            f"  worker {w['pid']}: {w['rss_after_warmup_mb']:.1f} MiB after warm-up, max "
            f"{w['rss_max_mb']:.1f}, end {w['rss_end_mb']:.1f} ({w['growth']:+.1%})"
        )
    print(
        f"  Redis: keys in the run's namespace {s['redis_namespace_keys']}, used_memory MiB "
        f"{s['redis_used_memory_mb']} (before, after)"
    )
