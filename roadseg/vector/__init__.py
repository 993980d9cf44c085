"""From masks to road graphs and lines: mask cleaning, skeleton graph, graph cleaning, vectorizing and the
geographic helpers (CRS, lengths in metres). Pure numpy, scikit-image, networkx and shapely."""
