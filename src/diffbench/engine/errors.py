"""Errors the engine raises on purpose. Each carries a one-line, user-facing message.

The CLI prints ``str(error)`` on one line and exits with :attr:`DiffbenchError.exit_code`;
anything else escaping the engine is a bug.
"""


class DiffbenchError(Exception):
    """Base of every expected failure. ``str(err)`` is a single line meant for the user."""

    exit_code = 1


class ConfigError(DiffbenchError, ValueError):
    """Bad user input: a RunConfig field, a profile, a flag. CLI exit code 2.

    ``field``: the setting the message is about (a RunConfig field name, or "size" for the
    width x height pair), so the dashboard can highlight its input; None when the error is
    about no single setting (a profile file, an unknown key).
    """

    exit_code = 2

    def __init__(self, message: str = "", field: "str | None" = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self):  # keep .field across pickling (child process, thread results)
        return (type(self), (str(self), self.field))


class ModelNotFoundError(DiffbenchError):
    """The model is neither built in, a local diffusers folder, nor in the local HF cache."""

    exit_code = 2


class AcceleratorUnavailableError(DiffbenchError):
    """The chosen compiler/accelerator cannot run here; the message says why and the fix."""

    exit_code = 2


class RunCancelled(DiffbenchError):
    """Raised inside the run when the ``cancel`` event is set (between steps or warmups)."""

    exit_code = 130
