"""Errors that reach the user as one clear line (the CLI exits 2, the GUI shows a dialog)."""


class MaskreviewError(Exception):
    """A problem with the user's input or environment, explained in the message itself."""


class BadInputError(MaskreviewError):
    """A file, folder, dataset or value the user gave us cannot be used as it is."""


class DatabaseError(MaskreviewError):
    """FiftyOne's database could not be reached or started."""


class CancelledError(MaskreviewError):
    """A long job was cancelled by the user; whatever it had committed stays."""


def one_line(message) -> str:
    """An error as the one line the CLI promises: line breaks (in a file name, say) shown escaped."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")
