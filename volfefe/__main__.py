"""`python -m volfefe` runs the command-line interface."""

from volfefe.cli.main import main

main()
