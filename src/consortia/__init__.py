"""consortia: a permissioned consortium blockchain platform."""

__version__ = "0.1.0"
