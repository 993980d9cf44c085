"""The ``roadseg`` command line: a thin Click layer over the :mod:`roadseg` library."""
