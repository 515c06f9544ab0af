"""Logging for every ``winnow`` process: expected errors reach the terminal as one line, tracebacks a file.

Prefect logs a failed task or flow with its traceback, from the flow process and from each Dask worker.
For a ``WinnowError`` (bad data, a bad setting, a missing model) that traceback says nothing the one-line
message does not, so the console drops those records; the CLI prints the message and exits 2. Every record,
tracebacks included, still goes to the run's log file (``WINNOW_LOG_FILE``, set by the CLI before Prefect
is imported, inherited by the workers), whose path the error message names. Unexpected exceptions keep
their traceback on the console. ``logging.yml`` beside this file is Prefect's default configuration plus
this filter and that file handler; ``PREFECT_LOGGING_SETTINGS_PATH`` points every process at it.
"""
from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

from winnow.errors import WinnowError

LOG_FILE_ENV = "WINNOW_LOG_FILE"
CONFIG = Path(__file__).with_name("logging.yml")


@cache
def _error_names(cls: type = WinnowError) -> frozenset[str]:
    """Names of WinnowError and its subclasses (all defined in winnow.errors, so computed once)."""
    return frozenset({cls.__name__}).union(*(_error_names(sub) for sub in cls.__subclasses__()))


class ExpectedErrorFilter(logging.Filter):
    """Drops console records about an expected error: its traceback, and Prefect's "failed with exception
    DataFormatError(...)" / "Finished in state Failed(...)" lines that repeat the message the CLI prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, WinnowError):
            return False
        if exc is None and record.name.startswith("prefect."):
            message = record.getMessage()
            if ("failed with exception" in message or "Failed(" in message) and \
                    any(f"{name}:" in message or f"{name}(" in message for name in _error_names()):
                return False
        return True


def run_log_handler() -> logging.Handler:
    """Appends to ``WINNOW_LOG_FILE`` when it is set (flow process and Dask workers alike), else nothing."""
    path = os.environ.get(LOG_FILE_ENV)
    if not path:
        return logging.NullHandler()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)-7s %(name)s - %(message)s"))
    return handler
