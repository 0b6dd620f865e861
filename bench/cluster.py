"""A generated cluster for the storm: 5,000 pods of 50 Deployments on 50 nodes, in the
storm's namespace, served by the stand-in Kubernetes API (with watch) 50 ms slow.

The storm's alerts name pods `e-<group>-<n>`: those with n < 10 exist (5,000 pods), the
others are gone (their alerts still read events). Every tenth pod crash-loops, so its
alerts call for its logs; the rest are healthy.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.chaos_tools import NAMESPACE
from tests.fakes.kube_api import FakeKubeApi, rehome, replicaset_for
from tests.fakes.kube_objects import CREATED, deployment, node, owner, pod

PODS_PER_GROUP = 10
APPS = 50
NODES = 50
TEMPLATE_HASH = "7d9f4c"
CRASH_LOG = "starting\nconnecting to db:5432\nERROR: connection refused\n"


def storm_cluster(tag: str, groups: int, delay_seconds: float) -> FakeKubeApi:
    fake = FakeKubeApi(delay_seconds=delay_seconds, bookmark_seconds=60.0)
    fake.add(*(node(f"node-{i}") for i in range(NODES)))
    for app in range(APPS):
        image = f"registry.example.com/app{app}:1"
        made = rehome(deployment(f"app{app}", replicas=100, ready=90, image=image), NAMESPACE)
        fake.add(made, replicaset_for(made, TEMPLATE_HASH, 1, CREATED))
    for group in range(groups):
        for n in range(PODS_PER_GROUP):
            name = f"{tag}-{group}-{n}"
            fake.add(_pod(name, group, crashing=n == 0))
            if n == 0:
                fake.add_log(NAMESPACE, name, "app", CRASH_LOG)
                fake.add_log(NAMESPACE, name, "app", CRASH_LOG, previous=True)
    return fake


def _pod(name: str, group: int, *, crashing: bool) -> dict[str, Any]:
    app = f"app{group % APPS}"
    made = pod(
        name,
        node=f"node-{group % NODES}",
        labels={"app": app, "pod-template-hash": TEMPLATE_HASH},
        owned_by=owner("ReplicaSet", f"{app}-{TEMPLATE_HASH}", namespace=NAMESPACE),
        ready=not crashing,
        waiting=("CrashLoopBackOff", "back-off 5m0s restarting failed container") if crashing else None,
        namespace=NAMESPACE,
    )
    if crashing:
        (status,) = made["status"]["containerStatuses"]
        status["restartCount"] = 12
        status["lastState"] = {
            "terminated": {"exitCode": 1, "reason": "Error", "startedAt": CREATED, "finishedAt": CREATED}
        }
    return made
