"""Fixtures shared by the acceptance tests: `volfefe`, the CLI on a test database."""

from tests.acceptance.test_cli_classify import volfefe

__all__ = ["volfefe"]
