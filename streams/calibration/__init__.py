"""``churnwatch calibrate``: fit the scoring config to a business's own history.

The history is replayed through the workers' own feature code (:mod:`.snapshots`), every
customer's signals are taken at several cutoffs and labelled by whether the customer was
active within the horizon after each; an additive points model is fitted on them
(:mod:`.fit`) and written as a scoring config (:mod:`.config_out`); the report compares it
with simple baselines on cutoffs held out from the fit (:mod:`.report`, :mod:`.metrics`).
Offline only: the worker never imports this package (it needs numpy, scipy and
scikit-learn).
"""
