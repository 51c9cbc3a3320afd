"""Helpers shared by the four homeworks: config, seeding, devices, text, vocabulary,
batching, checkpoints, distributed training, metrics and run folders."""
