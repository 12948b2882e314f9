"""Ethereum accounts of client identities: a secp256k1 key beside the certificate.

Every client identity cryptogen issues gets an Ethereum key in its directory:

    DIR/orgs/<org>/users/client<i>@<org>/eth.key       "0x" + 64 hex digits: the private key
                                                       (mode 0600), as wallets import it
    DIR/orgs/<org>/users/client<i>@<org>/eth.address   "0x" + 40 hex digits (EIP-55 mixed case)

A genesis built from the directory puts every client's address on the channel's EVM
allowlist, bound to its org, so wallets and tools can send transactions at once. The
genesis builder reads only the address files (the public half), as it reads only the
organisations' CA certificates.
"""

from __future__ import annotations

import re
from pathlib import Path

from consortia.crypto import SECP256K1
from consortia.identity import layout
from consortia.identity.errors import BadKey
from consortia.types.eth import checksum_address, eth_address

ETH_KEY = "eth.key"
ETH_ADDRESS = "eth.address"
_KEY_RE = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


def write_eth_key(directory: Path) -> bytes:
    """Generate a secp256k1 key, write eth.key (0600) and eth.address; return the address.

    Never overwrites: raises FileExistsError when either file exists.
    """
    key = SECP256K1.generate().raw
    address = eth_address(key)
    layout.write_new(directory / ETH_KEY, f"0x{key.hex()}\n".encode(), private=True)
    layout.write_new(directory / ETH_ADDRESS, f"{checksum_address(address)}\n".encode())
    return address


def load_eth_key(directory: Path) -> bytes:
    """The 32-byte private key in `directory`/eth.key.

    Raises IdentityNotFound (no file) or BadKey (malformed, not a valid secp256k1 key, or
    not the key of the address in eth.address when that file exists).
    """
    path = directory / ETH_KEY
    text = layout.read_bytes(path).decode("ascii", "replace").strip()
    if not _KEY_RE.fullmatch(text):
        raise BadKey(f"{path} must hold 0x followed by 64 hex digits")
    key = bytes.fromhex(text[2:])
    try:
        address = eth_address(key)
    except ValueError as exc:
        raise BadKey(f"{path} is not a valid secp256k1 private key") from exc
    if (directory / ETH_ADDRESS).exists() and read_eth_address(directory) != address:
        raise BadKey(f"{path} does not match {directory / ETH_ADDRESS}")
    return key


def read_eth_address(directory: Path) -> bytes:
    """The 20-byte address in `directory`/eth.address.

    Raises IdentityNotFound (no file) or BadKey (not 0x + 40 hex digits, or mixed case
    that fails its EIP-55 checksum).
    """
    path = directory / ETH_ADDRESS
    text = layout.read_bytes(path).decode("ascii", "replace").strip()
    if not _ADDRESS_RE.fullmatch(text):
        raise BadKey(f"{path} must hold 0x followed by 40 hex digits")
    digits = text[2:]
    address = bytes.fromhex(digits)
    if digits != digits.lower() and digits != digits.upper() and checksum_address(address) != text:
        raise BadKey(f"{path} fails its EIP-55 checksum")
    return address


def org_eth_accounts(crypto_dir: Path, org: str) -> list[tuple[str, bytes]]:
    """(identity name, address) of every user of `org` with an eth.address, sorted by name.

    Raises IdentityNotFound for a missing org, BadKey for a malformed address file.
    """
    users = layout.require_org(crypto_dir, org) / "users"
    if not users.is_dir():
        return []
    found = []
    for directory in sorted(users.iterdir(), key=lambda p: p.name):
        if (directory / ETH_ADDRESS).is_file():
            found.append((directory.name, read_eth_address(directory)))
    return found
