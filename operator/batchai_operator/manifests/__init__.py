"""Pure builders: TrainingJob and BatchAICluster specs -> the objects that run them (a module per child)."""
