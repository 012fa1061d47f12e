"""Exceptions that carry a message telling the user how to fix the problem."""


class MiddoError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class ConfigError(MiddoError):
    """A params.yaml section or a CLI option has an invalid value."""


class InputError(MiddoError):
    """A dataset file or row cannot be read as a sample."""


class JoinError(MiddoError):
    """Two tables keyed by `id` do not match 1:1."""
