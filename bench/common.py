"""What every figure shares: the bench environment, processes, timing, the table.

The bench runs against its own databases (cqrs_bench, cqrs_bench_read) and its
own Redis database (7); it never touches the development or test ones. The
processes are started from the very commands of the Makefile's `make run`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
PG = "postgres://postgres@127.0.0.1:5432"
# BENCH_DB_NAME and BENCH_REDIS_URL let two benches run side by side (development).
DB_NAME = os.environ.get("BENCH_DB_NAME", "cqrs_bench")
READ_DB_NAME = DB_NAME + "_read"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
BENCH_USER = "bench-customer"
BENCH_STAFF = "bench-staff"

ADDRESS = {
    "name": "Ada Bench",
    "line1": "1 Loop Road",
    "city": "Localhost",
    "postal_code": "12700",
    "country": "FR",
}


def bench_env(port: int = 0, **extra: str) -> dict[str, str]:
    """Return the environment of every bench process (and of the bench itself)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        # As deployed: DEBUG keeps every query and its timing in memory.
        DJANGO_DEBUG="false",
        DATABASE_URL=f"{PG}/{DB_NAME}",
        READ_DATABASE_URL=f"{PG}/{READ_DB_NAME}",
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CHANNEL_LAYER_URL=REDIS_URL,
        CHANNEL_LAYER_PREFIX="cqrs-bench",
        BENCH_BASELINE_ENDPOINT="1",
        # The bench sends hundreds of commands a second from one user: a limit
        # it never reaches, over a one-second window, so that the throttle's
        # history (a list per user in Redis) stays as short as a real user's.
        COMMAND_THROTTLE_RATE="1000000/s",
        READ_THROTTLE_RATE="1000000/s",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        # As `make run`: metrics of every process in one directory.
        PROMETHEUS_MULTIPROC_DIR=str(LOGS / "prometheus"),
    )
    if port:
        env["PORT"] = str(port)
    env.update(extra)
    return env


def setup_django() -> None:
    """Configure this process for the bench databases and set Django up."""
    os.environ.update(bench_env())
    import django

    django.setup()


# --- The processes of `make run` ---------------------------------------------------


def make_commands(port: int) -> dict[str, list[str]]:
    """Return the Makefile's run commands (WEB_CMD, ...) for the bench."""
    text = (ROOT / "Makefile").read_text()
    commands = {}
    for name, value in re.findall(r"^(\w+)_CMD\s*:=\s*(.+)$", text, flags=re.M):
        value = value.replace("$(VENV)", str(ROOT / ".venv"))
        value = value.replace("$(PORT)", str(port))
        argv = value.split()
        if "--schedule" in argv:
            argv[argv.index("--schedule") + 1] = str(LOGS / "celerybeat-schedule")
        commands[name.lower()] = argv
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    def start(self) -> Proc:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{self.name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 -- the child holds it
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def pids(self) -> list[int]:
        """Return the process and its descendants."""
        assert self.process is not None
        found = [self.process.pid]
        index = 0
        while index < len(found):
            children = Path(f"/proc/{found[index]}/task/{found[index]}/children")
            with contextlib.suppress(OSError):
                found += [int(pid) for pid in children.read_text().split()]
            index += 1
        return found

    def rss_kib(self) -> int:
        """Return the resident memory of the process tree, in KiB."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) the process tree has used."""
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class System:
    """The real server and workers, as `make run` starts them, on a free port."""

    def __init__(self, *names: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        commands = make_commands(self.port)
        self.procs = [
            Proc(name, commands[name], bench_env(self.port, **env)) for name in names
        ]

    def __enter__(self) -> System:
        metrics = LOGS / "prometheus"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
        try:
            for proc in self.procs:
                proc.start()
            for proc in self.procs:
                wait_until(functools.partial(self.is_ready, proc), timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def proc(self, name: str) -> Proc:
        return next(proc for proc in self.procs if proc.name == name)

    def is_ready_http(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def is_ready(self, proc: Proc) -> bool:
        assert proc.process is not None
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        if proc.name == "web":
            return self.is_ready_http()
        if proc.name == "beat":
            return True
        return b"ready." in proc.log_path.read_bytes()


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


# --- Databases ----------------------------------------------------------------------


def manage(*args: str) -> None:
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=bench_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def prepare_databases() -> None:
    """Create and migrate the bench databases (idempotent)."""
    manage("check_services", "--create-databases")
    manage("migrate", "--noinput")
    manage("migrate", "--noinput", "--database", "read")


def sql(dsn_db: str, statement: str, params: Sequence[Any] | None = None) -> list[Any]:
    """Run one statement on a bench database, on this process's connection to it.

    One autocommit connection per database, kept: with a new one per call,
    each poll of a wait (every 20 ms in figures 2 and 8) made PostgreSQL fork
    and start a backend, about 12 ms of CPU each, which the machine's CPU per
    command charged to the pipeline (1.3 ms a command in figure 2).
    """
    conn = _connection(dsn_db)
    cur = conn.execute(statement, params)
    return list(cur.fetchall()) if cur.description else []


_CONNECTIONS: dict[str, Any] = {}


def _connection(dsn_db: str) -> Any:
    import psycopg

    conn = _CONNECTIONS.get(dsn_db)
    if conn is None or conn.closed or conn.broken:
        conn = psycopg.connect(f"{PG}/{dsn_db}", autocommit=True)
        _CONNECTIONS[dsn_db] = conn
    return conn


def reset_state() -> None:
    """Empty every table the figures fill, and the bench's Redis database."""
    import redis

    sql(
        DB_NAME,
        # The event store refuses TRUNCATE unless the session allows it.
        "SET cqrs.allow_truncate_events = on; "
        # With the events go what refers to them: an effect left pending by a
        # figure would be retried against another figure's events (positions
        # restart), in the command worker whose CPU the next figure counts.
        "TRUNCATE events, commands, product_skus, effects, stream_snapshots, "
        "stream_snapshot_history RESTART IDENTITY; "
        "CREATE TABLE IF NOT EXISTS bench_baseline "
        "(id bigserial PRIMARY KEY, body jsonb NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now()); TRUNCATE bench_baseline",
    )
    tables = sql(
        READ_DB_NAME,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename LIKE 'read\\_%'",
    )
    sql(READ_DB_NAME, "TRUNCATE " + ", ".join(t for (t,) in tables))
    redis.Redis.from_url(REDIS_URL).flushdb()


def ensure_users() -> dict[str, str]:
    """Create the bench customer and staff user; return their API tokens."""
    from django.contrib.auth import get_user_model

    from api.tokens import issue_token

    user_model = get_user_model()
    tokens = {}
    for username, staff in ((BENCH_USER, False), (BENCH_STAFF, True)):
        user, _ = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": staff}
        )
        tokens[username] = issue_token(user)
    return tokens


def user_id(username: str) -> int:
    from django.contrib.auth import get_user_model

    return int(get_user_model().objects.get(username=username).pk)


def register_products(count: int, *, stock: int = 1_000_000_000) -> list[str]:
    """Append ProductRegistered events directly (as register-product would)."""
    from django.db import transaction

    from commands_app import eventstore
    from commands_app.domain.events import ProductRegistered
    from commands_app.domain.product import product_stream
    from commands_app.models import ProductSku

    ids = [uuid.uuid4() for _ in range(count)]
    with transaction.atomic():
        eventstore.append(
            [
                eventstore.NewEvents(
                    product_stream(pid),
                    0,
                    (
                        ProductRegistered(
                            product_id=pid,
                            sku=f"BENCH-{pid.hex[:10]}",
                            name=f"Bench product {i}",
                            price_cents=1999,
                            initial_stock=stock,
                        ),
                    ),
                )
                for i, pid in enumerate(ids)
            ],
            metadata={"recorded_by": "bench"},
        )
        ProductSku.objects.bulk_create(
            [ProductSku(sku=f"BENCH-{pid.hex[:10]}", product_id=pid) for pid in ids]
        )
    return [str(pid) for pid in ids]


def order_body(product_id: str) -> dict[str, Any]:
    return {
        "lines": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
    }


def command_counts() -> dict[str, int]:
    rows = sql(DB_NAME, "SELECT status, count(*) FROM commands GROUP BY status")
    return {status: int(n) for status, n in rows}


def any_open() -> bool:
    """Say if a command is still accepted or running (the open-commands index)."""
    rows = sql(
        DB_NAME,
        "SELECT EXISTS (SELECT 1 FROM commands "
        "WHERE status IN ('accepted', 'running'))",
    )
    return bool(rows[0][0])


def any_effect_pending() -> bool:
    """Say if an effect (an e-mail, a charge) is still to be delivered."""
    rows = sql(
        DB_NAME, "SELECT EXISTS (SELECT 1 FROM effects WHERE status = 'pending')"
    )
    return bool(rows[0][0])


def succeeded() -> int:
    return command_counts().get("succeeded", 0)


def all_projected() -> bool:
    """Return True when every projection has applied the last succeeded command."""
    rows = sql(
        DB_NAME,
        "SELECT e.tx_id::text::bigint, e.position FROM events e "
        "WHERE e.position = (SELECT max(position) FROM commands)",
    )
    if not rows:
        return True
    target = tuple(rows[0])
    marks = sql(READ_DB_NAME, "SELECT tx_id, position FROM read_checkpoints")
    return len(marks) >= 4 and all(tuple(mark) >= target for mark in marks)


# --- Load: wrk, or a Python fallback -------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token " .. os.getenv("BENCH_TOKEN")
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %f, "non2xx": %d, "errors": %d, '
    .. '"p50_ms": %f, "p99_ms": %f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return (self.requests - self.non2xx - self.errors) / self.seconds


def ensure_wrk() -> str | None:
    """Return wrk's path, installing it with apt-get when missing (as root)."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"],
        check=False,
        capture_output=True,
    )
    return shutil.which("wrk")


def post_load(
    url: str,
    body: dict[str, Any],
    token: str,
    *,
    seconds: float,
    connections: int = 16,
) -> LoadResult:
    """POST `body` for `seconds` at `connections`; wrk if present, else Python."""
    assert url.startswith("http://127.0.0.1:"), "loads go to loopback only"
    wrk = ensure_wrk()
    if wrk is None:
        return _python_load(url, body, token, seconds, connections)
    script = LOGS / "post.lua"
    LOGS.mkdir(parents=True, exist_ok=True)
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env={**os.environ, "BENCH_BODY": json.dumps(body), "BENCH_TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    return LoadResult(**json.loads(line.removeprefix("WRKJSON ")))


def _python_load(
    url: str, body: dict[str, Any], token: str, seconds: float, connections: int
) -> LoadResult:
    """Threads with keep-alive connections: slower than wrk, but no install."""
    import http.client
    import threading

    data = json.dumps(body).encode()
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    latencies: list[float] = []
    bad = [0]
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine: list[float] = []
        wrong = 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            conn.request(
                "POST",
                path,
                data,
                {"Content-Type": "application/json", "Authorization": f"Token {token}"},
            )
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - start) * 1000)
            wrong += response.status >= 300
        with lock:
            latencies.extend(mine)
            bad[0] += wrong

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(
        len(latencies),
        time.monotonic() - started,
        bad[0],
        0,
        percentile(latencies, 50),
        percentile(latencies, 99),
    )


# --- Numbers and the table ---------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_per_call(call: Callable[[], Any], calls: int, runs: int) -> float:
    """Return the median over `runs` of this process's CPU µs per call of `call`."""
    for _ in range(200):  # warm: imports, prepared statements, connections
        call()
    samples = []
    for _ in range(runs):
        started = time.process_time()
        for _ in range(calls):
            call()
        samples.append((time.process_time() - started) / calls * 1e6)
    return median(samples)


@dataclass
class Row:
    """One line of the table: our figure, the baseline, their ratio, the target."""

    figure: str
    metric: str
    ours: float
    baseline: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline  # type: ignore[operator]


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| figure | metric | ours | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        note = f" ({row.note})" if row.note else ""
        lines.append(
            f"| {row.figure} | {row.metric}{note} | {fmt(row.ours)} {row.unit} | "
            f"{fmt(row.baseline)} | {ratio} | {row.target} | {met} |"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


def machine_cpu_seconds() -> float:
    """Return the CPU seconds the machine has been busy, all cores (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for v in fields) - int(fields[3]) - int(fields[4])
    return busy / os.sysconf("SC_CLK_TCK")
