"""What backup, restore, adopt and fetch raise: each error says what happened to the stack's data
and how the command line ends (message prefix and exit code). Library errors are not caught as
these: a bug stays a traceback, not a message that claims nothing was changed."""

from __future__ import annotations


class BackupError(Exception):
    """Base of this package's errors; never raised itself."""

    outcome = "failed"  # the command line prints "<command> <outcome>: <message>"
    exit_code = 1


class Refused(BackupError):
    """A check failed; nothing was changed."""

    outcome = "refused"
    exit_code = 3


class StepFailed(BackupError):
    """A step that changes something failed after every check had passed (pg_restore, the role's
    password, a `pulumi config set`); the message says what state it left."""


class PartialRestore(BackupError):
    """A step ran and a later one failed: what was done, and how to finish or undo it."""

    outcome = "incomplete"
    exit_code = 4
