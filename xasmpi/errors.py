"""Project exceptions.

Every error a user can cause (bad file, bad job key, missing binary, failed external
program) is raised as a :class:`XasmpiError` subclass with a one-line message that names
the file or key and the problem.  The CLI prints ``xasmpi: error: <message>`` and exits
with :attr:`XasmpiError.exit_code` (2) without a traceback; ``--debug`` shows it.
"""
from __future__ import annotations


class XasmpiError(Exception):
    """Base class: a user-facing, one-line error."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # force one line


class ConfigError(XasmpiError):
    """A job file (or ``--set`` override) is invalid: unknown key, wrong type, unit or range."""


class InputError(XasmpiError):
    """An input data file (spectrum, structure, results file) is missing or malformed."""


class ExternalProgramError(XasmpiError):
    """An external program (FDMNES, FEFF) is missing, failed, timed out or wrote garbage."""


class ResultsError(XasmpiError):
    """A results file is missing a group, is from another version, or is incomplete."""


class CampaignError(XasmpiError):
    """The campaign cannot start: output locked by another run, changed job, etc."""
