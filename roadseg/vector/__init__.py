"""From masks to road graphs and lines: mask cleaning, skeleton graph (whole or block by block), graph
cleaning, evidence per edge, vectorizing and the geographic helpers (CRS, lengths in metres)."""
