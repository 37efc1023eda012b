"""The registry: one module per projector, named after it, re-exported."""

from __future__ import annotations

import pytest

from projections import projectors
from projections.registry import PROJECTORS, projector_class, projector_names

pytestmark = [pytest.mark.unit]


@pytest.mark.parametrize("name", projector_names())
def test_each_projector_lives_in_the_module_named_after_it(name: str) -> None:
    cls = projector_class(name)

    assert cls.name == name
    assert cls.__module__ == f"projections.projectors.{name}"
    assert PROJECTORS[name] == f"{cls.__module__}.{cls.__qualname__}"


@pytest.mark.parametrize("name", projector_names())
def test_the_projectors_package_re_exports_every_registered_projector(
    name: str,
) -> None:
    cls = projector_class(name)

    assert getattr(projectors, cls.__qualname__) is cls
    assert cls.__qualname__ in projectors.__all__
