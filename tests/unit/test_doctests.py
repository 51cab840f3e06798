"""Every doctest in volfefe/ and benches/ runs: each module of the packages, found by
walking them, with ELLIPSIS on (as pytest's --doctest-modules has). Examples that need a
database, a model or the network are marked `# doctest: +SKIP` where they stand; every
other one runs here, with neither."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import benches
import volfefe

MODULES = sorted(
    info.name
    for package in (volfefe, benches)
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    if not info.name.endswith(".__main__")  # importing one would run the program
)


def test_the_walk_finds_the_whole_package() -> None:
    assert {"volfefe.config", "volfefe.store.connect", "volfefe.child.calibration"} <= set(MODULES)
    assert len(MODULES) > 100


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
