"""The ``churnwatch`` commands, grouped by what they do.

:mod:`.live` runs or watches the pipeline on Kafka, :mod:`.produce` writes input records,
:mod:`.offline` replays a history in process and :mod:`.common` holds what they share.
:mod:`streams.cli` makes the app and registers them; nothing here imports it.
"""
