"""Errors that are the user's to fix: the CLI prints them in one line, exit 2."""

import sys


class UserError(Exception):
    """A mistake in the input or the options (bad file, bad band, existing output...)."""


def warn(message: str):
    """Print one ``daskmag: warning: ...`` line on stderr (the run goes on)."""
    print(f"daskmag: warning: {message}", file=sys.stderr, flush=True)
