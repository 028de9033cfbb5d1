"""The one exception type a user sees: a clear, one-line message, exit status 2."""


class GtiError(Exception):
    """Bad input or an impossible request, reported to the user in one line.

    The message names the file, line, field or key at fault and what was expected.
    The CLI prints it without a traceback and exits with status 2.
    """
