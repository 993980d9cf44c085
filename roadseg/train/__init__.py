"""Training with the zoo's recipe: the loop (one device or many under msrun), data, augmentation,
learning-rate schedule and losses. Imports MindSpore (through :mod:`roadseg.model.mindspore_runtime`)
only in the modules that need it."""
