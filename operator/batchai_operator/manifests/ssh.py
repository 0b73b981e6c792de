"""The per-job SSH key Secret of multi-node jobs (workers run sshd, node 0 reaches them, e.g. mpirun)."""

from __future__ import annotations

from typing import Any


def generate_ssh_keypair() -> tuple[str, str]:
    """(OpenSSH private key, public key line). Impure (random): called when the Secret is created."""
    # Imported here: only multi-node jobs need a key, and cryptography is 7 MB of an idle operator's RSS.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode() + " batchai-job\n"


def build_ssh_secret(metadata: dict[str, Any], private_key: str, public_key: str) -> dict[str, Any]:
    """The SSH key Secret with the given metadata (a child's: name, namespace, labels, owner)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/ssh-auth",
        "metadata": metadata,
        "stringData": {"ssh-privatekey": private_key, "ssh-publickey": public_key},
    }
