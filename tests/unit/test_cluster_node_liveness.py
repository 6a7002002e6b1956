"""The cluster helper's view of a node's VM, on real processes of this machine."""
import os
import signal
import subprocess

from tests.support.cluster import RabbitCluster


def cluster_with_pid(tmp_path, pid):
    cluster = RabbitCluster()
    cluster.base = tmp_path
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "rabbitmq.pid").write_text(f"{pid}\n")
    return cluster


def test_a_killed_vm_not_yet_reaped_is_dead(tmp_path):
    child = subprocess.Popen(["sleep", "60"])
    cluster = cluster_with_pid(tmp_path, child.pid)
    try:
        assert cluster.process_alive("c1")
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie
        assert cluster.process_alive("c1") is False
    finally:
        child.kill()
        child.wait()


def test_a_missing_or_stale_pid_file_is_dead(tmp_path):
    cluster = RabbitCluster()
    cluster.base = tmp_path
    assert cluster.process_alive("c1") is False
    child = subprocess.Popen(["true"])
    child.wait()
    assert cluster_with_pid(tmp_path, child.pid).process_alive("c1") is False
