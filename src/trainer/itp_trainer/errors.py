"""User errors: reported as one JSON line and exit code 1, never a traceback (the contract in README.md)."""


class UserError(Exception):
    """Bad input the user can fix: a config key, a missing file, an option this machine cannot run."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
