"""Sliding-window inference: the resolution the network sees (GSD) and resampling back, window geometry,
blending weights, test-time augmentation and the predict loop over arrays and files. The model is a
callable passed in; no MindSpore here."""
