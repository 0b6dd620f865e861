"""Root-cause ranking: pure functions over plain data (rca.model), no I/O but rca.cases.

- rca.cases.load_case(dir): a case directory -> SignalTable, inject time, edges, label
- rca.graph.build_graph(edges) / index_calls(edges, services): the call graph
- rca.scoring.score_series(table, inject_time): robust per-series scores
- rca.ranking.rank(table, inject_time, edges, facts, among): every service once, best first
- rca.suspects.blend(suspects, ranked): Kubernetes objects and services in one ranking
- rca.evaluate.run_rca(dir) / run_eval(dir): `kubebot rca` and `kubebot rca-eval`
"""
