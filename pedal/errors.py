"""User-facing errors: one line that names the file (or device, or option) and the field at
fault. Every error the pedal or its tools raise for the user to act on is a PedalError; the
CLIs print str() of it and exit with EXIT_USAGE."""

EXIT_USAGE = 2


class PedalError(Exception):
    """An error the user can act on. str() is the one line the CLIs print; exit_status is
    the CLIs' exit status for it."""
    exit_status = EXIT_USAGE

    def __init__(self, where: object, problem: str):
        where = str(where)
        # a file name with a NUL or a newline in it must not break the one line
        self.where = where if where.isprintable() else repr(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class ModelError(PedalError):
    """A model file (ours or a foreign one) that cannot be played."""


class AudioFileError(PedalError):
    """A WAV/FLAC that is not usable audio."""
