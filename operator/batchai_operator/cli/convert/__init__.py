"""Batch AI job.json and cluster.json files -> TrainingJob and BatchAICluster manifests plus the Secrets
their keys go into: what `kubectl batchai job create|convert` and `cluster create` send (pure, besides
reading the file). document.py reads and checks a file, secrets.py moves key material into Secrets,
job.py and cluster.py convert each kind."""
