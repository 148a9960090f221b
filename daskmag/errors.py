"""Errors that are the user's to fix: the CLI prints them in one line, exit 2."""


class UserError(Exception):
    """A mistake in the input or the options (bad file, bad band, existing output...)."""
