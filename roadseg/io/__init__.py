"""Files in and out: rasters (open, windowed read, write), masks, GeoJSON and the other vector formats,
input discovery, remote rasters (URLs) and STAC items, atomic outputs and mosaics. No MindSpore here."""
