"""The physical world, no machine learning: metadata, simulators, file readers and equations."""
