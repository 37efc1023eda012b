"""The OpenAPI schema is valid, warning-free and describes every command."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.management import call_command

from commands_app.registry import COMMANDS


def test_the_openapi_schema_is_valid_and_describes_every_command(tmp_path: Path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(target))
    schema = yaml.safe_load(target.read_text())
    for name, spec in COMMANDS.items():
        operation = schema["paths"][f"/api/commands/{name}/"]["post"]
        assert "202" in operation["responses"]
        for code in spec.refusals:
            assert code in operation["description"]
    assert "/api/commands/{command_id}/" in schema["paths"]
