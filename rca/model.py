"""Plain data shared by the online and offline root-cause paths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class SignalTable:
    """Time x series, as in the case format: column `<service>_<metric>`.

    `values[i, j]` is series `columns[j]` at `times[i]` (unix seconds, ascending);
    NaN where the series had no sample.
    """

    times: npt.NDArray[np.float64]
    columns: tuple[str, ...]
    values: npt.NDArray[np.float64]

    @staticmethod
    def service_of(column: str) -> str:
        """The service is everything before the first underscore."""
        return column.split("_", 1)[0]

    @staticmethod
    def metric_of(column: str) -> str:
        return column.split("_", 1)[1] if "_" in column else ""

    @classmethod
    def from_series(cls, times: list[float], series: dict[str, list[float]]) -> SignalTable:
        names = tuple(series)
        values = np.full((len(times), len(names)), np.nan, dtype=np.float64)
        for j, name in enumerate(names):
            values[:, j] = np.asarray(series[name], dtype=np.float64)
        return cls(np.asarray(times, dtype=np.float64), names, values)


@dataclass(frozen=True)
class Edge:
    """caller -> callee, as one graph source saw it."""

    caller: str
    callee: str
    source: str  # "kubernetes", "servicegraph", "istio", "linkerd", "jaeger", "static"
    request_rate: float | None = None
    error_rate: float | None = None


@dataclass(frozen=True)
class RootCause:
    """A likely cause: a service, or a Kubernetes object when `kind` says which kind.

    `service` is the name shown (a service's, or the object's own name); `namespace` is
    the object's, None for services and cluster-scoped objects.
    """

    service: str
    score: float
    evidence: tuple[str, ...] = ()
    kind: str | None = None
    namespace: str | None = None

    def to_json(self) -> dict[str, object]:
        plain: dict[str, object] = {"service": self.service, "score": self.score, "evidence": list(self.evidence)}
        # A service's cause reads as it always has; only an object's names what it is.
        if self.kind is not None:
            plain["kind"] = self.kind
            if self.namespace is not None:
                plain["namespace"] = self.namespace
        return plain
