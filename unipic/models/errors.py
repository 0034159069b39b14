"""Errors raised by models and pipelines. They subclass `UniPicError` (the CLI prints them without a
traceback) and `ValueError` (so code that expects diffusers' ValueErrors keeps working)."""

from unipic.errors import UniPicError


class ModelError(UniPicError):
    """A model folder, checkpoint or architecture cannot be used as asked."""


class ModelInputError(ModelError, ValueError):
    """An input tensor or image has a shape the model cannot take (size, channels, batch)."""


class ModelLoadError(ModelError):
    """A checkpoint does not match the architecture it is loaded into (missing/unexpected keys)."""


class MemoryBudgetError(ModelError):
    """A configuration would not fit in the memory available; refused before anything is allocated."""
