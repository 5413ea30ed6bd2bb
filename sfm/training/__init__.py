"""Library pieces of ``sfm.train``, in the order it uses them.

``recipe`` (the YAML contract and the model kind) → ``data`` / ``examples`` (sources and tokenized examples)
→ ``args`` (TrainingArguments) → ``tokens`` (token models) or ``fields`` (continuous and operator models),
both returning a ``run_folder.Prepared`` → ``run_folder`` (the shared Trainer session, resume and the saved
run) with ``trainer`` (guards and callbacks), ``budget`` (the time limit and what a run spent) and ``setup``
(tokenizer, backbone, batch arithmetic, complete checkpoints); ``merge`` folds an adapter into its base.
"""
