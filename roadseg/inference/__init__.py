"""Sliding-window inference: window geometry, blending weights, test-time augmentation and the predict
loop over arrays and files. The model is a callable passed in; no MindSpore here."""
