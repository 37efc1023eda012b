"""Count what PostgreSQL runs per command, by statement, under the sustained load.

    .venv/bin/python bench/statements.py --commands 2000

The whole `make run` layout takes `--commands` place-order commands (figure 2's
load); `pg_stat_statements` then says, for each statement of the write and
the read database, how often it ran and how long it took per command. Counts
do not depend on the machine's load, so this profile holds where timings do
not. It needs the `pg_stat_statements` module loaded by the server
(`shared_preload_libraries`, a restart): the script says how when it is not,
and creates the extension in the bench databases itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, fig_sustained
from bench.common import System

ENABLE = (
    "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements' (and "
    "pg_stat_statements.track_planning = on to see planning); then restart "
    "PostgreSQL (pg_ctlcluster --skip-systemctl-redirect <version> main restart), and "
    "ALTER SYSTEM RESET shared_preload_libraries with a restart afterwards"
)


DB = common.DB_NAME


def loaded() -> bool:
    rows = common.sql(DB, "SHOW shared_preload_libraries")
    return "pg_stat_statements" in rows[0][0]


def per_command(commands: int, top: int) -> str:
    """Return both bench databases' statements per command, most frequent first."""
    rows = common.sql(
        DB,
        "SELECT d.datname, s.calls, s.total_exec_time, s.plans, s.total_plan_time, "
        "regexp_replace(s.query, '\\s+', ' ', 'g') FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname IN (%s, %s) "
        "ORDER BY s.calls DESC",
        [common.DB_NAME, common.READ_DB_NAME],
    )
    calls = sum(row[1] for row in rows)
    exec_ms = sum(row[2] for row in rows)
    plans = sum(row[3] for row in rows)
    plan_ms = sum(row[4] for row in rows)
    lines = [
        f"{commands} commands: {calls / commands:.1f} statements and "
        f"{exec_ms / commands:.2f} ms of execution per command; "
        f"{plans / commands:.1f} plans and {plan_ms / commands:.2f} ms of planning "
        "(pg_stat_statements: planning counted only with "
        "pg_stat_statements.track_planning on; parsing and the protocol not at all)",
        "",
        "| database | per command | exec ms per command | plans per command "
        "| plan ms per command | statement |",
        "|---|---|---|---|---|---|",
    ]
    for datname, count, total, planned, planning, query in rows[:top]:
        side = "read" if datname == common.READ_DB_NAME else "write"
        lines.append(
            f"| {side} | {count / commands:.2f} | {total / commands:.3f} "
            f"| {planned / commands:.2f} | {planning / commands:.3f} "
            f"| `{query[:110]}` |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    common.prepare_databases()
    if not loaded():
        sys.exit(f"pg_stat_statements is not loaded: {ENABLE}")
    for name in (common.DB_NAME, common.READ_DB_NAME):
        common.sql(name, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    common.setup_django()
    token = common.ensure_users()[common.BENCH_USER]
    common.reset_state()
    products = common.register_products(fig_sustained.PRODUCTS)
    with System(*fig_sustained.LAYOUT) as system:
        fig_sustained.one_run(system, token, products, 50)  # warm up
        common.sql(DB, "SELECT pg_stat_statements_reset()")
        fig_sustained.one_run(system, token, products, args.commands)
        report = per_command(args.commands, args.top)
    common.reset_state()
    print(report)


if __name__ == "__main__":
    main()
