"""`python -m volfefe` runs the command-line interface."""

from volfefe.cli import main

main()
