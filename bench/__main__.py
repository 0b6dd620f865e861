"""`make bench`: every benchmark in one run, each printing its figure beside a reference."""

from __future__ import annotations

from bench import ingest, rca


def main() -> None:
    print("KubeBot benchmarks (figures and their references are measured in this same run)")
    ingest.main()
    rca.main()


if __name__ == "__main__":
    main()
