"""Model monitoring: what the model says, how its inputs drift from training, how right it is."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards.limits import Limits
from dashboards.panels import (
    CRITICAL,
    WARN,
    data_table,
    named_columns,
    prom,
    score_heatmap,
    time_series,
)
from dashboards.templating import (
    MODEL,
    deploys_from_grafana,
    deploys_from_metrics,
    feature,
    model_version,
    new_dashboard,
)

UID = "obslab-model"

PREDICTIONS = f"model_predictions_total{{{MODEL}}}"
FEATURES = f'{MODEL}, feature=~"$feature"'


def build(limits: Limits) -> dashboard.Dashboard:
    drift_limits = [(limits.ticket_psi, WARN), (limits.page_psi, CRITICAL)]
    return (
        new_dashboard(
            UID,
            "obslab / Model monitoring",
            "The scoring model's decisions and score distribution per model version, input "
            "and prediction drift against training (PSI), missing inputs, and accuracy from "
            "delayed feedback.",
        )
        .with_variable(model_version())
        .with_variable(feature())
        .annotation(deploys_from_metrics('job="scoring"'))
        .annotation(deploys_from_grafana())
        .with_row(dashboard.Row("Predictions"))
        .with_panel(
            time_series(
                "Decisions by model version",
                "Predictions per second by model version and decision.",
                "ops",
                prom(
                    f"sum by (model_version, decision) (rate({PREDICTIONS}[$__rate_interval]))",
                    "{{model_version}} {{decision}}",
                ),
                stacked=True,
                width=8,
            )
        )
        .with_panel(
            time_series(
                "Approval share by release",
                "Share of applicants approved, per release (version and model): a "
                "miscalibrated model moves it at once.",
                "percentunit",
                prom(
                    f"job_version:model_approvals:ratio{{{MODEL}}}",
                    "{{version}} ({{model_version}})",
                ),
                width=8,
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "Mean predicted default probability",
                "Average score per model version.",
                "percentunit",
                prom(
                    "sum by (model_version) (rate(model_prediction_score_sum"
                    f"{{{MODEL}}}[$__rate_interval]))\n/\n"
                    "sum by (model_version) (rate(model_prediction_score_count"
                    f"{{{MODEL}}}[$__rate_interval]))",
                    "{{model_version}}",
                ),
                width=8,
                minimum=0,
            )
        )
        .with_row(dashboard.Row("Score distribution"))
        .with_panel(
            score_heatmap(
                "Score distribution: $model_version",
                "Predictions per score bucket over time, one heatmap per model version.",
                "percentunit",
                prom(
                    "sum by (le) (increase(model_prediction_score_bucket"
                    f"{{{MODEL}}}[$__rate_interval]))",
                    "{{le}}",
                    heatmap_format=True,
                ),
            )
            .repeat("model_version")
            .repeat_direction("h")
            .max_per_row(2)
        )
        .with_panel(
            time_series(
                "Prediction drift (PSI of the score)",
                "Population stability index of the score distribution against training. "
                "PredictionDrift opens a ticket above the orange line and pages above the red.",
                "none",
                prom(f'obslab:model_feature:psi{{{MODEL}, feature="score"}}', "{{model_version}}"),
                limits=drift_limits,
                minimum=0,
            )
        )
        .with_row(dashboard.Row("Input drift"))
        .with_panel(
            time_series(
                "Feature drift (PSI per feature)",
                "Population stability index of each input feature against its training "
                "deciles. FeatureDrift opens a ticket above the orange line and pages above "
                "the red.",
                "none",
                prom(
                    f'obslab:model_feature:psi{{{FEATURES}, feature!="score"}}',
                    "{{feature}} ({{model_version}})",
                ),
                limits=drift_limits,
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "Missing-feature ratio",
                "Share of applicants sent to the model whose input arrived without the feature "
                "(null). FeatureMissing fires above the dashed line.",
                "percentunit",
                prom(
                    'obslab:model_feature_missing:ratio{feature=~"$feature"}',
                    "{{feature}}",
                ),
                limits=[(limits.missing_ratio, CRITICAL)],
                minimum=0,
            )
        )
        .with_panel(
            data_table(
                "Live and training share per bin",
                "For each feature, the share of recent inputs that fell in each training "
                "decile bin next to the training share (about 10% each): the bins that "
                "moved explain the PSI.",
                "percentunit",
                prom(
                    f"obslab:model_feature_bin:share{{{FEATURES}}}",
                    instant=True,
                    table_format=True,
                ),
                prom(
                    f"obslab:model_baseline_share:clamped{{{FEATURES}}}",
                    instant=True,
                    table_format=True,
                ),
                transformations=named_columns(
                    {"Value #A": "live share", "Value #B": "training share"}, merge=True
                ),
                height=10,
            )
        )
        .with_row(dashboard.Row("Accuracy"))
        .with_panel(
            time_series(
                "Accuracy from feedback",
                "Share of predictions that delayed feedback found correct, against the "
                "accuracy measured at training. ModelAccuracyDrop fires below the alert line "
                f"({limits.accuracy_drop:.0%} under training).",
                "percentunit",
                prom(f"obslab:model_accuracy:ratio{{{MODEL}}}", "{{model_version}} live"),
                prom(
                    f"max by (model_version) (model_baseline_accuracy{{{MODEL}}})",
                    "{{model_version}} training",
                ),
                prom(
                    f"max by (model_version) (model_baseline_accuracy{{{MODEL}}})"
                    f" - {limits.accuracy_drop:g}",
                    "{{model_version}} alert line",
                ),
                minimum=0,
            )
        )
        .with_panel(
            time_series(
                "Feedback by outcome",
                "Ground-truth outcomes received per second, by whether the prediction was right.",
                "ops",
                prom(
                    "sum by (model_version, outcome) (rate(model_feedback_total"
                    f"{{{MODEL}}}[$__rate_interval]))",
                    "{{model_version}} {{outcome}}",
                ),
                stacked=True,
            )
        )
    )
