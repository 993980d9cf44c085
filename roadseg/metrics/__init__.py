"""Scores: pixel metrics (the zoo's and the literature's), APLS, TOPO and line metrics, evaluation over
files and error maps."""
