"""Training: the loop (:mod:`.loop`), its config, the batch samplers, the losses, the teacher, checkpoints, early
stopping, dev metrics and the run summary. A run's product is a model directory with its language means."""
