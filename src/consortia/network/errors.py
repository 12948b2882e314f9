"""Typed network errors: everything the network layer raises for bad peers or bad setup."""

from __future__ import annotations


class NetworkError(Exception):
    """Base of every error the network package raises."""

    code = "network_error"


class BadNetworkConfig(NetworkError):
    """The node's own network setup is unusable (TLS material, names, limits)."""

    code = "bad_network_config"


class FrameTooLarge(NetworkError):
    """A peer announced a frame longer than the connection allows."""

    code = "frame_too_large"


class BadFrame(NetworkError):
    """A frame that does not decode, or arrives when its kind is not allowed."""

    code = "bad_frame"


class HelloRefused(NetworkError):
    """A peer's HELLO did not prove it is a validator of this channel."""

    code = "hello_refused"


class SyncError(NetworkError):
    """Block sync could not make progress from any connected peer."""

    code = "sync_error"
