"""The simulation tools' user-facing error."""

from lyra.errors import InputError


class SimError(InputError):
    """A bad scene or option for the simulation tools (printed as one line by the CLI, exit 2)."""
