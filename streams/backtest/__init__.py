"""Backtest: replay a history through the workers' code in process and measure the alerts.

The history is read from JSON Lines (the documented event envelope) or from a plain CSV of
purchases (:mod:`.inputs`), sorted by event time and replayed through
:class:`streams.replay.LocalPipeline` with the silence timer ticking on event time
(:mod:`.replay`). Against a truth file (which customers churned and when) the alerts are
scored: precision, recall, F1, lead time, false alerts, flapping (:mod:`.metrics`). Every
figure is defined in docs/backtest.md. The metric functions are pure. The replay folds its
outputs into those figures as they are produced, so its memory grows with the customers
and the at-risk episodes, not with the evaluations. :mod:`.report` writes the report and
:mod:`.run` is what ``churnwatch backtest`` runs.
"""

from streams.backtest.inputs import (
    LAZY_READ_ABOVE_BYTES,
    HistoryFormatError,
    InputRecord,
    JsonlHistory,
    NothingToReplayError,
    Truth,
    history_format,
    load_events,
    load_truth,
    read_events,
    written_by_the_simulator,
)
from streams.backtest.metrics import (
    DAYS_PER_MONTH,
    DEFAULT_HORIZON,
    Confusion,
    CustomerFinal,
    alert_starts,
    classify,
    false_alerts_per_1000_per_month,
    final_states,
    first_alert_in_window,
    flapping_rate,
    lead_time_stats,
    min_scores,
    quantile,
    threshold_curve,
)
from streams.backtest.replay import (
    ACTIVITY_TYPES,
    KEPT_OUTPUTS,
    BacktestResult,
    run_backtest,
)
from streams.backtest.replay import _OutputFold as _OutputFold  # the tests fold outputs
from streams.backtest.report import (
    CUSTOMER_COLUMNS,
    png_backend,
    report_dict,
    summary_table,
    write_report,
)
from streams.backtest.run import backtest_main, print_bad_lines
from streams.purchases_csv import LineError

__all__ = [
    "ACTIVITY_TYPES",
    "BacktestResult",
    "CUSTOMER_COLUMNS",
    "Confusion",
    "CustomerFinal",
    "DAYS_PER_MONTH",
    "DEFAULT_HORIZON",
    "HistoryFormatError",
    "InputRecord",
    "JsonlHistory",
    "NothingToReplayError",
    "KEPT_OUTPUTS",
    "LAZY_READ_ABOVE_BYTES",
    "LineError",
    "Truth",
    "backtest_main",
    "alert_starts",
    "classify",
    "false_alerts_per_1000_per_month",
    "final_states",
    "first_alert_in_window",
    "flapping_rate",
    "history_format",
    "lead_time_stats",
    "load_events",
    "load_truth",
    "min_scores",
    "png_backend",
    "print_bad_lines",
    "quantile",
    "read_events",
    "report_dict",
    "run_backtest",
    "summary_table",
    "threshold_curve",
    "write_report",
    "written_by_the_simulator",
]
