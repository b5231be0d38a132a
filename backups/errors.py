"""The one exception type the backups app raises for expected failures.

Its message is shown to operators as is: it says what went wrong and what to do next, and
never carries a secret.
"""


class BackupError(Exception):
    """A backup, restore, verification or retention run could not be done."""


class PartialRestore(BackupError):  # noqa: N818 - an outcome, named for what the operator faces
    """A restore failed after it had replaced some of its targets; the message says which
    were replaced, where the previous copies are kept, and which were left as they were."""

    def __init__(self, message: str, *, replaced: list[str]) -> None:
        super().__init__(message)
        self.replaced = replaced
