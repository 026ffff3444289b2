"""The exception hierarchy of raynas.

Every error raised on purpose derives from :class:`RaynasError`, so callers can catch one class. Messages
name the rule, the offending value, what is allowed and, where there is one, the fix. The CLI turns a
``RaynasError`` into a one-line message on stderr and exit code 2 (usage errors) without a traceback.
"""

from __future__ import annotations


class RaynasError(Exception):
    """Root of every error raynas raises on purpose."""


class ConfigError(RaynasError, ValueError):
    """A search or training config is invalid: unknown key, wrong type, out-of-range value, missing file."""


class SpaceError(RaynasError, ValueError):
    """A search space was asked for something it does not have (unknown space, op, cell or edge)."""


class GenotypeError(RaynasError, ValueError):
    """A genotype text or object is malformed or does not belong to the search space."""


class DataError(RaynasError, ValueError):
    """A data set is missing, unreadable, or its options are inconsistent."""


class ResultsError(RaynasError, ValueError):
    """An experiment folder or its tables are missing, unreadable or of an unknown schema version."""


class SearchDivergedError(RaynasError, ArithmeticError):
    """A search's loss became NaN or infinite; the trial stops and its row says where."""


class FolderError(RaynasError, RuntimeError):
    """An experiment, evaluation run or build folder cannot be used now: another raynas process holds its lock,
    or it is not safe to resume (owned by someone else, or writable by others: resuming loads pickled code)."""


class StorageError(RaynasError, RuntimeError):
    """Remote storage (``s3://``, ``gs://``) cannot be reached, listed, read or written: no such bucket, no
    endpoint or credentials, a network error (:mod:`raynas.remote`)."""
