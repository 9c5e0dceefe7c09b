"""One exception family, so command-line front ends can print one line and exit non-zero."""


class DenoiseError(Exception):
    """Base class for every error the toolkit reports to users."""


class SpecError(DenoiseError):
    """A model spec is missing, malformed or newer than this runtime."""


class AudioError(DenoiseError):
    """Audio that cannot be processed faithfully (rate, channels, NaN/Inf, empty, corrupt)."""


class ModelError(DenoiseError):
    """A model file that cannot be loaded or does not match its spec."""
