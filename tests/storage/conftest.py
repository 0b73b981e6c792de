"""Storage tests: the CLI's storage code against Azurite and the Azure Files double (no control plane)."""

from storage_services import azurite, azurite_oauth, files_double  # noqa: F401
