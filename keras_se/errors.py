"""Error types shared by the command-line modules (no heavy imports)."""


class UserError(ValueError):
    """A mistake in the command line: one line on stderr, exit status 2.

    Subcommands raise this (or `ValueError` from the API) for user mistakes.
    """
