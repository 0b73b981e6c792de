"""Azure Storage access (Azure Files shares and blob containers), used by kubectl-batchai."""
