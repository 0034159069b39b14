"""Errors a user can act on.

Expected failures (bad config, unreachable store, corrupt input) raise a subclass of `UniPicError`;
the CLI prints its message without a traceback and exits with code 2. Anything else is a bug and
keeps its traceback.
"""


class UniPicError(Exception):
    """A failure whose message tells the user what is wrong and how to fix it."""


class ConfigError(UniPicError):
    """A config file, preset or override is invalid."""


class StorageError(UniPicError):
    """The object store is unreachable, refuses credentials, or holds incomplete data."""


class ServiceError(UniPicError):
    """A local service (SeaweedFS, model server) cannot be started, reached or stopped."""


class DataError(UniPicError):
    """Input data is malformed: a corrupt shard, a missing field, an unknown task."""


class IntegrityError(UniPicError):
    """Content does not match its recorded hash (checkpoint, dataset, model)."""
