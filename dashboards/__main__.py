"""``python -m dashboards``: regenerate the dashboard JSON and Grafana provisioning files."""

from dashboards.build import REPO_ROOT, write_all


def main() -> None:
    for path in write_all():
        print(f"wrote {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
