"""Publishing: model cards, the leaderboard (build, render, scaling section) and plots, all read from the
typed results and run records.

* :mod:`sfm.publish.leaderboard`: rank results files, write md/csv/json/html (``sfm leaderboard``);
* :mod:`sfm.publish.cards`: a run's Hugging Face model card (``sfm card``);
* :mod:`sfm.publish.kinds`: what each row is (baseline, oracle, token / continuous / operator model);
* :mod:`sfm.publish.templating`: the Jinja environment; every page's prose is in ``templates/``;
* :mod:`sfm.publish.plots`: the figures both use.
"""
