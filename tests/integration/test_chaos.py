"""A small chaos run in `make test` (the full one is `make chaos`): the operator killed and restarted,
kube-apiserver and etcd restarted once, and still every job ends right, once, and leaves nothing behind."""

from __future__ import annotations

from operator_process import OperatorProcess

from chaos import run


def test_a_small_chaos_run_loses_nothing(operator: OperatorProcess) -> None:
    report = run(operator, jobs=16, kills=3, kill_every=4.0, nodes=12, timeout=300)
    print(report.line())
    assert report.kills == 3 and report.apiserver_restarts == 1 and report.etcd_restarts == 1
    assert report.ok, report
