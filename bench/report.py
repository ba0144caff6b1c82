"""The latest results as Markdown: `python -m bench.report` (every table), with `--readme`
the README's one table (both seeds side by side)."""

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _ratio(row: dict[str, Any]) -> str:
    return f"**{row['ratio']:.2f}** × ({row['ceiling']})" if row["ratio"] is not None else "—"


def _target(row: dict[str, Any]) -> str:
    if row.get("target") is None:
        return "—"
    return f"{row['target']} {'met' if row.get('met') else '**not met**'}"


def _db_cpu(row: dict[str, Any]) -> str:
    db = row.get("db_cpu_ms_per_request")  # absent from runs before it was measured
    return "—" if db is None else f"{db:.2f}"


def size_table(data: dict[str, Any]) -> str:
    lines = [
        f"#### {data['size']} seed ({data['fixture']['records']:,} records, "
        f"{data['fixture']['users']:,} users), run {data['timestamp']}",
        "",
        "| endpoint | conns | ratio to ceiling | target | req/s | p50 ms | p99 ms | errors "
        "| CPU ms/req | DB CPU ms/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in data["table"]:
        lines.append(
            f"| {row['endpoint']} | {row['connections']} | {_ratio(row)} | {_target(row)} | "
            f"{row['rps']:.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} | "
            f"{row['cpu_ms_per_request']:.2f} | {_db_cpu(row)} |"
        )
    storm = data["login_storm"]
    if "ratio_p50" in storm:
        lines += [
            "",
            f"Login storm: `GET /auth/me` on one connection, p50 {storm['idle_p50_ms']} ms idle, "
            f"{storm['storm_p50_ms']} ms while 32 connections log in: **{storm['ratio_p50']}×** "
            f"(p99 {storm['ratio_p99']}×; {storm['logins_per_second']} logins/s).",
        ]
    hashing = data.get("password_hashing", {})
    if "hash_ms_median" in hashing:
        lines.append(
            f"Password hashing: argon2{hashing['type']}, {hashing['memory_kib']} KiB, "
            f"{hashing['passes']} passes, {hashing['lanes']} lane: "
            f"{hashing['hash_ms_median']} ms per hash."
        )
    memory = data["memory"]
    for pid, window in memory["windows"].items():
        final = memory["final_rss_mb"].get(pid)
        lines.append(
            f"Worker {pid}: RSS {window['first_window_mb']} MB in the first 10 s, "
            f"{window['last_window_mb']} MB in the last 10 s, "
            f"{final if final is None else round(final, 1)} MB after the run."
        )
    lines += ["", "Checks: " + "; ".join(
        f"{name} {'✔' if ok else '✘'}" for name, ok in data["checks"].items()
    ) + "."]  # fmt: skip
    return "\n".join(lines)


def flat_table(comparison: dict[str, Any]) -> str:
    side = comparison.get("side_by_side")
    if not side:
        return ""
    lines = [
        "#### Flat with size: both seeds served side by side, "
        f"{side['rounds']} rounds in alternating order; change: median of the paired runs' ratios",
        "",
        "| endpoint | conns | small req/s | large req/s | change | p50 ms small → large | flat |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in side["rows"]:
        lines.append(
            f"| {r['endpoint']} | {r['connections']} | {r['small_rps']:.0f} | "
            f"{r['large_rps']:.0f} | {100 * r['rps_change']:+.1f}% | "
            f"{r['small_p50_ms']} → {r['large_p50_ms']} | {'yes' if r['flat'] else '**no**'} |"
        )
    return "\n".join(lines)


def readme_table(small: dict[str, Any], large: dict[str, Any] | None) -> str:
    """One row per endpoint (32 connections): its ratio on each seed, its target, CPU."""

    def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {r["endpoint"]: r for r in data["table"] if r["connections"] == 32}

    on_small, on_large = rows(small), rows(large) if large else {}
    lines = [
        "| endpoint, 32 connections | target | small seed | large seed "
        "| worker / PostgreSQL CPU ms per request (small) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def cell(row: dict[str, Any] | None) -> str:
        if row is None:
            return "—"
        rps = f"{row['rps']:,.0f} req/s"
        if row.get("ratio") is None:
            return rps
        mark = "" if row.get("met") is not False else " ✘"
        return f"**{row['ratio']:.2f}** × ({row['ceiling']}){mark}, {rps}"

    for name, row in on_small.items():
        target = f"{row['target']} ×" if row.get("target") is not None else "—"
        cpu = f"{row['cpu_ms_per_request']:.2f} / {_db_cpu(row)}"
        lines.append(f"| `{name}` | {target} | {cell(row)} | {cell(on_large.get(name))} | {cpu} |")
    return "\n".join(lines)


def main() -> None:
    small, large = _load("latest-small.json"), _load("latest-large.json")
    if "--readme" in sys.argv and small:
        print(readme_table(small, large))
        return
    parts = []
    for size in ("small", "large"):
        data = _load(f"latest-{size}.json")
        if data:
            parts.append(size_table(data))
    comparison = _load("latest-comparison.json")
    if comparison:
        parts.append(flat_table(comparison))
    print("\n\n".join(p for p in parts if p))


if __name__ == "__main__":
    main()
