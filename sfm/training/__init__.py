"""Library pieces of ``sfm.train``: data -> examples, collators, PEFT set-up, callbacks, checkpoints."""
