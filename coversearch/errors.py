"""The one small exception hierarchy of coversearch.

Library code raises these; only the CLI turns them into ``Error: ...`` on
stderr and a non-zero exit code. Messages are one line and name the culprit
(file, id, option).
"""


class CoversearchError(Exception):
    """Base class of every error coversearch reports to a user."""

    exit_code = 1


class DataError(CoversearchError):
    """A data file or folder is missing, corrupt, or not in Da-TACOS format."""

    exit_code = 2


class UnknownIdError(CoversearchError):
    """A performance or work id is not in the index."""

    exit_code = 3


class IndexMismatchError(CoversearchError):
    """An index is missing, inconsistent, or was built by another model/dimension."""

    exit_code = 4


class ConfigError(CoversearchError):
    """An option or a stored config is invalid."""

    exit_code = 5


class DownloadError(CoversearchError):
    """A download failed (HTTP error, network failure, checksum mismatch, disk space)."""

    exit_code = 6
