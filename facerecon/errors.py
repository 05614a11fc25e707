"""Errors a user can act on; each message says what went wrong in plain words."""


class FaceReconError(Exception):
    """Base class of the library's user-facing errors."""


class ImageReadError(FaceReconError):
    """The input could not be read as an image (not an image, truncated, too large...)."""


class NoFaceFound(FaceReconError):
    """The image was read but no face was detected in it."""


class EmptyFaceError(FaceReconError):
    """A face was found, but (almost) nothing of its crop was recognised as face: there is no surface to mesh."""


class ModelFileError(FaceReconError):
    """A weight or config file is missing, corrupt, truncated or does not match the network."""
