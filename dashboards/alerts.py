"""Alerts: what fires now, what fired in the time range, and the pages the on-call got.

Prometheus evaluates the rules and keeps their state as the ``ALERTS`` and
``ALERTS_FOR_STATE`` series; Alertmanager and the oncall receiver report what they sent and
stored as metrics of their own. So the whole path is on one dashboard without extra plugins.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from dashboards.panels import (
    CRITICAL,
    WARN,
    alert_list,
    data_table,
    named_columns,
    note,
    prom,
    single_stat,
    time_series,
)
from dashboards.templating import deploys_from_grafana, deploys_from_metrics, new_dashboard

UID = "obslab-alerts"

ONCALL_NOTE = """\
The on-call receiver keeps every page Alertmanager sends it:

* its page list: [http://localhost:8002/](http://localhost:8002/) (JSON at `/pages`);
* from a shell: `obslab pages` (add `--status firing` or `--alertname NAME`).

Silences and alert groups as Alertmanager holds them:
[Alerting > Alert groups](/alerting/groups?alertmanager=Alertmanager) and
[Silences](/alerting/silences?alertmanager=Alertmanager), both reading the Alertmanager
datasource. Each alert's `runbook_url` annotation opens its section of `alerts/runbook.md`.
"""


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            UID,
            "obslab / Alerts",
            "Alerts firing and pending now, the alerts that fired in the time range, and the "
            "notifications that reached the on-call receiver as pages.",
        )
        .annotation(deploys_from_metrics('job=~".+"'))
        .annotation(deploys_from_grafana())
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single_stat(
                "Pages firing",
                "Alerts of severity page firing now: someone is being woken up.",
                "none",
                prom('count(ALERTS{alertstate="firing", severity="page"}) or vector(0)'),
                limits=[(1, CRITICAL)],
                width=6,
            )
        )
        .with_panel(
            single_stat(
                "Tickets firing",
                "Alerts of severity ticket firing now: work for office hours.",
                "none",
                prom('count(ALERTS{alertstate="firing", severity="ticket"}) or vector(0)'),
                limits=[(1, WARN)],
                width=6,
            )
        )
        .with_panel(
            single_stat(
                "Pending",
                "Alerts whose condition holds but whose for: window has not yet run out.",
                "none",
                prom('count(ALERTS{alertstate="pending"}) or vector(0)'),
                limits=[(1, WARN)],
                width=6,
            )
        )
        .with_panel(
            single_stat(
                "Pages received (range)",
                "Notifications the oncall receiver stored as pages in the time range, "
                "firing and resolved.",
                "none",
                prom("sum(increase(oncall_notifications_total[$__range]))"),
                limits=[(1, WARN)],
                width=6,
            )
        )
        .with_panel(
            data_table(
                "Active alerts",
                "Every alert pending or firing now, with its labels and how long its "
                "condition has held (from ALERTS_FOR_STATE, the time it became active).",
                "s",
                prom("time() - ALERTS_FOR_STATE", instant=True, table_format=True),
                transformations=named_columns({"Value": "active for"}),
                width=12,
            )
        )
        .with_panel(
            alert_list(
                "Alert rules",
                "The rules Prometheus evaluates, as Grafana reads them from the Prometheus "
                "datasource: firing and pending first.",
            )
        )
        .with_row(dashboard.Row("History"))
        .with_panel(
            time_series(
                "Firing alerts over time",
                "Each alert that fired in the time range, one line per alert and severity.",
                "none",
                prom(
                    'count by (alertname, severity) (ALERTS{alertstate="firing"})',
                    "{{alertname}} ({{severity}})",
                ),
                limits=[(1, WARN)],
                bars=True,
                width=24,
            )
        )
        .with_row(dashboard.Row("Notification path"))
        .with_panel(
            time_series(
                "Alertmanager notifications",
                "Notifications Alertmanager sent and failed to send per second, by "
                "integration. Failures mean pages are not reaching the receiver.",
                "ops",
                prom(
                    "sum by (integration) "
                    "(rate(alertmanager_notifications_total[$__rate_interval]))",
                    "{{integration}} sent",
                ),
                prom(
                    "sum by (integration) "
                    "(rate(alertmanager_notifications_failed_total[$__rate_interval]))",
                    "{{integration}} failed",
                ),
                limits=[(0.01, CRITICAL)],
                width=8,
            )
        )
        .with_panel(
            time_series(
                "Pages stored by the oncall receiver",
                "Notifications stored as pages per second, by alert status.",
                "ops",
                prom(
                    "sum by (status) (rate(oncall_notifications_total[$__rate_interval]))",
                    "{{status}}",
                ),
                bars=True,
                width=8,
            )
        )
        .with_panel(
            time_series(
                "Webhooks refused by the oncall receiver",
                "Webhook requests the receiver refused, by reason: any at all means a "
                "misconfigured token or payload, and lost pages.",
                "ops",
                prom(
                    "sum by (reason) (rate(oncall_webhook_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                ),
                limits=[(0.001, CRITICAL)],
                width=8,
            )
        )
        .with_panel(
            note(
                "Where the pages are",
                "Links to the on-call receiver and to Alertmanager's groups and silences.",
                ONCALL_NOTE,
                height=6,
            )
        )
    )
