"""NetGPT core: settings, the cross-process message contract, service lifecycle and the CLI."""

__version__ = "0.1.0"
