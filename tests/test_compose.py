"""The run setup agrees with itself: compose file, Makefile, .env.example, lock.

Docker cannot run here, so docker-compose.yml is checked against the Compose
Specification's JSON schema. tests/data/compose-spec.json is the official schema
(compose-spec/compose-spec, schema/compose-spec.json, Apache-2.0), vendored
unchanged from the copy that the npm package dclint 3.1.0 ships as
schemas/compose.schema.json (sha256 46b7d35f19dd93a0...). It declares JSON Schema
draft 7. Plain pytest: no database, no Django.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = [pytest.mark.unit]

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "compose-spec.json"

# compose service -> the Makefile variable holding the same `make run` process
APP_SERVICES = {
    "web": "WEB_CMD",
    "worker-commands": "COMMANDS_WORKER_CMD",
    "worker-imports": "IMPORTS_WORKER_CMD",
    "worker-projections": "PROJECTIONS_WORKER_CMD",
    "beat": "BEAT_CMD",
}
IMAGE = "cqrs-orders:latest"
# Optional services, started only with `docker compose --profile observability up`.
OBSERVABILITY = ("prometheus", "grafana", "jaeger")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator: jsonschema.Draft7Validator, data: Any) -> list[str]:
    return [
        f"{error.json_path}: {error.message}" for error in validator.iter_errors(data)
    ]


def makefile_variables() -> dict[str, str]:
    """Read the simple `NAME := value` assignments of the Makefile."""
    variables = {}
    pattern = re.compile(r"^([A-Z_]+)\s*[:?]?=\s*(.*?)\s*$")
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = pattern.match(line)
        if match:
            variables[match.group(1)] = match.group(2)
    return variables


def normalise(argv: list[str]) -> list[str]:
    """Drop the venv prefix and the values of --host and --port."""
    words = [re.sub(r"^(\$\(VENV\)|\.venv)/bin/", "", word) for word in argv]
    for option in ("--host", "--port"):
        if option in words:
            words[words.index(option) + 1] = f"<{option[2:]}>"
    return words


def make_run_process(variable: str) -> list[str]:
    return normalise(shlex.split(makefile_variables()[variable]))


def test_the_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    assert schema_errors(validator, compose) == []


@pytest.mark.parametrize(
    "broken",
    [
        {"services": {"web": {"image": "x", "depends_on": {"db": {}}}}},
        {
            "services": {
                "web": {"image": "x", "depends_on": {"db": {"condition": "up"}}}
            }
        },
        {"services": {"web": {"image": "x", "commandd": ["true"]}}},
        {"services": {"web": {"image": "x", "healthcheck": {"test": 1}}}},
        {"services": {}, "volume": {}},
    ],
)
def test_the_schema_refuses_what_the_specification_forbids(
    validator: jsonschema.Draft7Validator, broken: dict[str, Any]
) -> None:
    assert schema_errors(validator, broken) != []


def test_the_compose_file_has_the_services_of_the_design(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == {"postgres", "redis", "migrate", *APP_SERVICES}
    optional = {name: services[name]["profiles"] for name in set(services) - default}
    assert optional == {key: ["observability"] for key in OBSERVABILITY}


def test_every_app_service_runs_the_one_image_built_once(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    app = ["migrate", *APP_SERVICES]
    assert {services[name]["image"] for name in app} == {IMAGE}
    builders = [name for name in services if "build" in services[name]]
    assert builders == ["migrate"]


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_services_wait_for_healthy_services_and_migrations(
    compose: dict[str, Any], service: str
) -> None:
    assert compose["services"][service]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_services_reach_postgres_and_redis_by_service_name(
    compose: dict[str, Any], service: str
) -> None:
    env = compose["services"][service]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://postgres@postgres:5432/")
    assert env["READ_DATABASE_URL"].startswith("postgres://postgres@postgres:5432/")
    assert env["DATABASE_URL"] != env["READ_DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")


def test_postgres_redis_and_web_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_the_migrate_service_creates_migrates_both_databases_and_seeds(
    compose: dict[str, Any],
) -> None:
    script = " ".join(compose["services"]["migrate"]["command"])
    steps = [
        "manage.py check_services --create-databases",
        "manage.py migrate --noinput",
        "manage.py migrate --noinput --database read",
        "manage.py seed_demo",
    ]
    positions = [script.find(step) for step in steps]
    assert -1 not in positions, script
    assert positions == sorted(positions)


@pytest.mark.parametrize(("service", "variable"), sorted(APP_SERVICES.items()))
def test_compose_runs_the_same_command_as_make_run(
    compose: dict[str, Any], service: str, variable: str
) -> None:
    command = compose["services"][service]["command"]
    assert isinstance(command, list)
    assert normalise(command) == make_run_process(variable)


def test_make_run_starts_the_five_processes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/run_all.py" in recipe
    for variable in APP_SERVICES.values():
        assert f"$({variable})" in recipe


def test_the_make_run_processes_are_those_of_the_design() -> None:
    assert make_run_process("WEB_CMD") == shlex.split(
        "python -m config.serve --host <host> --port <port> --workers 2"
    )
    assert make_run_process("COMMANDS_WORKER_CMD")[:6] == shlex.split(
        "celery -A config.celery_app worker -Q commands"
    )
    assert make_run_process("IMPORTS_WORKER_CMD")[:6] == shlex.split(
        "celery -A config.celery_app worker -Q imports,maintenance"
    )
    assert make_run_process("PROJECTIONS_WORKER_CMD")[:6] == shlex.split(
        "celery -A config.celery_app worker -Q projections"
    )
    assert make_run_process("BEAT_CMD")[:4] == shlex.split(
        "celery -A config.celery_app beat"
    )


def settings_env_vars() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']")
    for path in (ROOT / "config" / "settings").glob("*.py"):
        names.update(pattern.findall(path.read_text()))
    return names


def test_env_example_lists_every_variable_the_settings_read() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert settings_env_vars() - listed == set()


def test_env_example_sets_nothing_when_copied_to_dot_env() -> None:
    # The settings read .env; an active DATABASE_URL there would also point the
    # test settings at the development database.
    text = (ROOT / ".env.example").read_text()
    active = [line for line in text.splitlines() if re.match(r"^[A-Z_]+=", line)]
    assert active == []


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_pins_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    declared = {
        canonical(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in specs
    }
    lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    unpinned = [
        line for line in lines if not re.fullmatch(r"[A-Za-z0-9._-]+==[\w.+!-]+", line)
    ]
    assert unpinned == []
    pinned = {canonical(line.split("==")[0]) for line in lines}
    assert declared - pinned == set()
    assert canonical(project["name"]) not in pinned


# --- Scaling: docker-compose.yml, docs/operations.md -------------------------------

OPERATIONS = ROOT / "docs" / "operations.md"
SCALE = re.compile(r"docker compose up -d((?: --scale [a-z-]+=\d+)+)")


def scale_commands(text: str) -> list[dict[str, int]]:
    """Return each `docker compose up -d --scale a=N ...` of a text as {a: N}."""
    return [
        {name: int(n) for name, n in re.findall(r"--scale ([a-z-]+)=(\d+)", found)}
        for found in SCALE.findall(text)
    ]


def operators_map() -> dict[str, str]:
    """Return {tier: compose service} from the operators' map of operations.md.

    The service is the first `quoted` word of the row's second cell, "-" if none.
    """
    section = OPERATIONS.read_text().split("## Hosts: the operators' map", 1)[1]
    table = section.split("| tier | compose service |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    return {
        row.split("|")[1].strip(): row.split("|")[2].split("`")[1]
        if "`" in row.split("|")[2]
        else "-"
        for row in rows
        if not row.startswith("|---")
    }


def test_the_docs_and_the_compose_file_show_the_same_scale_command(
    compose: dict[str, Any],
) -> None:
    header = (ROOT / "docker-compose.yml").read_text()
    in_compose = scale_commands(header)
    in_docs = scale_commands(OPERATIONS.read_text())
    assert in_compose
    assert in_docs == in_compose
    for scaled in in_compose:
        # The web and the workers scale; beat (exactly one) and migrate never.
        assert set(scaled) <= set(APP_SERVICES) - {"beat"}
        assert "web" in scaled


def test_scaled_services_can_run_side_by_side(compose: dict[str, Any]) -> None:
    services = compose["services"]
    biggest = max(
        scaled.get("web", 1)
        for scaled in scale_commands((ROOT / "docker-compose.yml").read_text())
    )
    for name in APP_SERVICES:
        assert "container_name" not in services[name], name
    # Each web replica needs a host port of its own: a range at least as wide.
    (published,) = services["web"]["ports"]
    match = re.fullmatch(r"127\.0\.0\.1:(\d+)-(\d+):8000", published)
    assert match, published
    first, last = int(match.group(1)), int(match.group(2))
    assert first == 8000
    assert last - first + 1 >= biggest
    assert f"127.0.0.1:{first}-{last}" in OPERATIONS.read_text()
    for name in ("worker-commands", "worker-imports", "worker-projections"):
        command = services[name]["command"]
        assert command[command.index("-n") + 1].endswith("@%h"), name


def test_the_operators_map_names_every_compose_service(
    compose: dict[str, Any],
) -> None:
    mapped = operators_map()
    services = {name for name in mapped.values() if name != "-"}
    default = {
        name
        for name, service in compose["services"].items()
        if "profiles" not in service
    }
    assert services == default - {"migrate"}
    for tier in (
        "web",
        "command worker",
        "imports worker",
        "projection worker",
        "beat",
    ):
        assert tier in mapped, tier
