"""The one exception type the backups app raises for expected failures.

Its message is shown to operators as is: it says what went wrong and what to do next, and
never carries a secret.
"""


class BackupError(Exception):
    """A backup, restore, verification or retention run could not be done."""
