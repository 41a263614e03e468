"""Grafana dashboards as code (grafana-foundation-sdk) and the JSON they generate.

One module per dashboard; ``dashboards.build`` turns them into JSON models and provisioning
files, ``python -m dashboards`` writes them to ``dashboards/json/`` and
``config/grafana/provisioning/``.
"""
