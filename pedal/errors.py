"""User-facing errors: one line that names the file (or device) and the field at fault."""


class PedalError(Exception):
    """An error the user can act on. str() is the one line the CLIs print."""

    def __init__(self, where, problem):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class ModelError(PedalError):
    """A model file (ours or a foreign one) that cannot be played."""


class AudioFileError(PedalError):
    """A WAV/FLAC that is not usable audio."""
