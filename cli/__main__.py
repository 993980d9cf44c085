"""``python -m roadseg.cli``: the same as the ``roadseg`` command."""

from roadseg.cli.main import main

main()
