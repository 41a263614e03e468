"""The one exception type the CLI reports as a plain message instead of a traceback."""


class ObslabError(Exception):
    """An expected failure (bad configuration, busy port, missing binary, ...).

    Its message is written for the user: one line saying what is wrong and where.
    """
