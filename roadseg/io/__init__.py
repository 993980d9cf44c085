"""Files in and out: rasters (open, windowed read, write), masks, GeoJSON, input discovery, atomic
outputs and mosaics. No MindSpore here."""
