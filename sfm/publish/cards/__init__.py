"""Model cards: the ``README.md`` of a trained run, in Hugging Face conventions, built offline.

* :mod:`.records`: the run record, its results (only those of exactly its weights) and its data's metadata;
* :mod:`.metadata`: the YAML header and ``model-index`` (the rules are in its docstring);
* :mod:`.context`: record → the facts of each body section; :mod:`.render`: sections and card from the
  templates (``templates/model_card.md``, prose in ``templates/model_card_sections.j2``);
* :mod:`.figures`: the card's plots; :mod:`.hub`: ``--push-to-hub``.
"""

from sfm.publish.cards.hub import FIGURES_DIR, PUSH_IGNORE, push_to_hub
from sfm.publish.cards.metadata import DEFAULT_LICENSE, card_data, task_eval_results
from sfm.publish.cards.records import (
    RUN_FILE,
    base_model_id,
    check_results,
    matches,
    read_run,
    run_name,
    select_results,
    training_dataset,
)
from sfm.publish.cards.render import (
    TEMPLATE,
    card_variables,
    model_card,
    template_variables,
    write_model_card,
)

__all__ = [
    "DEFAULT_LICENSE",
    "FIGURES_DIR",
    "PUSH_IGNORE",
    "RUN_FILE",
    "TEMPLATE",
    "base_model_id",
    "card_data",
    "card_variables",
    "check_results",
    "matches",
    "model_card",
    "push_to_hub",
    "read_run",
    "run_name",
    "select_results",
    "task_eval_results",
    "template_variables",
    "training_dataset",
    "write_model_card",
]
