"""Winnow's small error family.

Each error subclasses the built-in it resembles, so a caller's generic ``except ValueError`` still works,
and each message carries the context a user needs to fix the input (file, line, field, or setting).
"""
from __future__ import annotations


class WinnowError(Exception):
    """Base class of every error Winnow raises on purpose."""


class ConfigError(WinnowError, ValueError):
    """One or more settings are wrong; the message lists all of them at once."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems) if len(self.problems) == 1 else
                         "invalid settings:\n" + "\n".join(f"  - {p}" for p in self.problems))

    def __reduce__(self):  # rebuilt from its own arguments after travelling between Dask processes
        return (self.__class__, (self.problems,))


class DataFormatError(WinnowError, ValueError):
    """A data file cannot be used at all (missing, unreadable, or no usable record)."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = path if line is None else f"{path}:{line}"
        what = f"field {field!r}: " if field else ""
        self.message = message
        super().__init__(f"{where}: {what}{message}")

    def __reduce__(self):
        return (self.__class__, (self.path, self.message, self.line, self.field))


class StaleArtifactError(WinnowError, RuntimeError):
    """A stored artifact was made under other settings than the ones asked for now."""


class MissingDependencyError(WinnowError, ImportError):
    """An optional package is needed; the message gives the install line."""


class ShardError(WinnowError, RuntimeError):
    """A feature shard failed: names the table, rows, checkpoint and cause (so a failed run says where)."""
