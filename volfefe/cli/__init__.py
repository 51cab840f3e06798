"""The command line, `python -m volfefe COMMAND`: the group in `main`, one module per command
group. It builds one `Settings` and passes it down; nothing below reads the environment."""

from volfefe.cli.main import main

__all__ = ["main"]
