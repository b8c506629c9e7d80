"""Two Ray nodes on this machine (Ray's cluster utilities start each as its own raylet with its own resources), this
test process as the driver: a search's networks are trained on both nodes, and the cache says which trained what."""

from __future__ import annotations

import sqlite3
import time

import pytest
from support import TINY

from nasgym.core.config import make_configs
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install nasgym[ray] (CI installs it)")
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"node_a": 1}, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=1, resources={"node_b": 1})
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, log_to_driver=False)
    # Start a worker process on each node before the search: otherwise the head may finish every training while
    # the second node's first worker is still starting, and the search never reaches that node.
    ready = ray.remote(lambda: ray.get_runtime_context().get_node_id())
    assert len(set(ray.get([ready.options(resources={node: 1}).remote() for node in ("node_a", "node_b")]))) == 2
    # Then wait until the driver's view of the cluster shows both CPUs free again: under load the second node's
    # release of its warm-up task reaches the scheduler late, and until then every training queues on the head.
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def test_a_search_spreads_its_networks_over_both_nodes(cluster, tmp_path):
    import ray

    path = tmp_path / "rewards.sqlite"
    budget = {**TINY, "epochs": 3, "max_samples": 600}  # about a second per network
    options = {**budget, "backend": "ray", "ray_address": cluster.address, "cache_path": str(path)}
    # REINFORCE hands the evaluator the networks of 8 episodes at once: one batch for the two nodes to share.
    agent = {"seed": 0, "architectures_per_update": 8}
    run_search(tmp_path / "run", SearchSettings("reinforce", "digits", 8, options, agent), progress=False)

    networks = {row.network for row in RunFolder(tmp_path / "run").episodes() if row.rewarded}
    config, train_config = make_configs({**options, "dataset": "digits", "backend": "local"})
    keys = TrainingEvaluator.from_config(config, train_config)  # the same keys, computed here
    cache = RewardCache(path)
    rewarded_on = [cache.get(keys.key(Architecture.parse(network))).node for network in networks]
    # Every network the search trained, not only the few its 8 steps rewarded (REINFORCE's batch of 8 is trained
    # before its first step, and a final-reward episode rewards only its last step): where each of them ran.
    with sqlite3.connect(path) as db:
        trained_on = [node for (node,) in db.execute("SELECT node FROM rewards")]
    alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(alive) == 2 and set(rewarded_on) <= alive, rewarded_on
    assert len(trained_on) >= 2 and set(trained_on) == alive, trained_on
