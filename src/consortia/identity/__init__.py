"""Organisations, X.509 identities, roles, revocation and k-of-n policies (the MSP)."""
