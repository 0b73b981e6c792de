"""The per-job SSH key pair for multi-node MPI jobs (workers run sshd, node 0 runs mpirun)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def generate_ssh_keypair() -> tuple[str, str]:
    """(OpenSSH private key, public key line). Uses `cryptography`, already a dependency of azure-identity."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode() + " batchai-job\n"
