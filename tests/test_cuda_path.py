"""The CUDA path's safeguards, driven on the CPU with fakes where they need no GPU: a stream per training thread, CUDA
graphs off for the process after a failed capture, the memory cache emptied only after running out of memory, GPU
ids of reused Ray workers, out of memory beside other trainings retried alone, a last batch of one image that
BatchNorm cannot take. The tests at the end need a GPU."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from itertools import cycle

import pytest
import torch
from support import REPO, TINY, ReadyRay

from nasgym.core import ray_backend
from nasgym.core.datasets import load_dataset
from nasgym.core.errors import NasGymError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.network import NetworkConfig, build_network
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer, TrainConfig, cuda_graphs
from nasgym.core.training.device import memory_bytes
from nasgym.core.training.streams import STREAM_POOL_SIZE, StreamOwner
from nasgym.core.training.trainer import _one_image_breaks_batch_norm

CONFIG = TrainConfig(epochs=TINY["epochs"], batch_size=TINY["batch_size"])
ONE_BY_ONE = Architecture.parse("m2-c3-m2-c3")  # at 16 px its last convolution's map is 1x1
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", TINY["image_size"], max_samples=240)


@pytest.fixture
def graphs_on(monkeypatch):
    """CUDA graphs on again for this test (a failed capture turns them off for the process), and as before after."""
    monkeypatch.setattr(cuda_graphs, "_FAILURE", None)


# -- 1. one stream per thread ------------------------------------------------------------------------------------
def run_in_threads(count: int, work):
    """``work()`` in ``count`` threads that are all alive until every one has finished; the results in order."""
    results, barrier = [None] * count, threading.Barrier(count)

    def run(index: int) -> None:
        try:
            results[index] = work()
        except Exception as error:  # returned, so that the test sees it
            results[index] = error
        barrier.wait()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def round_robin(streams: list) -> Callable[[object], object]:
    """A fake ``torch.cuda.Stream``: hands out ``streams`` in turn, as PyTorch hands out its pool's."""
    turn = cycle(streams)
    return lambda _device: next(turn)


def test_a_thread_keeps_its_stream_and_live_threads_never_share_one():
    pool = [object() for _ in range(4)]  # a stream pool handed out round-robin, as torch.cuda.Stream() does
    owner = StreamOwner(round_robin(pool))
    mine = owner.stream("cuda:0")
    assert owner.stream("cuda:0") is mine and owner.stream(torch.device("cuda:0")) is mine
    assert owner.stream("cuda:1") is not mine  # one per device
    pairs = run_in_threads(2, lambda: (owner.stream("cuda:0"), owner.stream("cuda:0")))
    assert all(first is second for first, second in pairs)
    assert len({id(first) for first, _ in pairs} | {id(mine)}) == 3
    # The pool has gone round: the next thread is offered the main thread's stream first, and skips it.
    later = run_in_threads(1, lambda: owner.stream("cuda:0"))[0]
    assert later is not mine and later in pool


def test_more_threads_than_pool_streams_fail_clearly_and_the_evaluator_starts_no_more(digits):
    owner = StreamOwner(round_robin([object()]))
    owner.stream("cuda:0")
    [error] = run_in_threads(1, lambda: owner.stream("cuda:0"))
    assert isinstance(error, RuntimeError) and f"more than {STREAM_POOL_SIZE} threads train on cuda:0" in str(error)
    trainer = ChildTrainer(digits, CONFIG, "cpu")
    assert trainer.max_threads > 1000
    trainer.device = torch.device("cuda")
    assert trainer.max_threads == STREAM_POOL_SIZE


# -- 2. a failed capture ---------------------------------------------------------------------------------------
def test_after_a_failed_capture_graphs_stay_off_and_later_trainings_work(digits, graphs_on):
    """On the CPU every capture fails, which exercises the real path: the failure turns graphs off process-wide."""
    config = TrainConfig(epochs=1, batch_size=32)  # 2 eager steps, then a capture
    eager = {a: ChildTrainer(digits, config, "cpu").train(Architecture.parse(a)).accuracy for a in ("c3-a2", "c5")}
    trainer = ChildTrainer(digits, config, "cpu")
    trainer.cuda_graphs = True  # what a CUDA trainer does
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        first = trainer.train(Architecture.parse("c3-a2"))
    assert "capture failed, trained eagerly" in first.execution and first.accuracy == eager["c3-a2"]
    assert cuda_graphs.capture_failure() is not None
    other = ChildTrainer(digits, config, "cpu")
    other.cuda_graphs = True
    for network, training in (("c5", trainer), ("c3-a2", trainer), ("c5", other)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no capture is tried again, so nothing warns
            later = training.train(Architecture.parse(network))
        assert later.failure == "" and later.accuracy == eager[network]
        assert "eager" in later.execution and "graphs off in this process since a capture failed" in later.execution
    step = cuda_graphs.GraphedStep(lambda batch: None, generators=[])
    step.eager_steps[4] = cuda_graphs.GRAPH_WARMUP_STEPS
    with pytest.raises(cuda_graphs.GraphCaptureError, match="CUDA graphs are off in this process"):
        step(torch.arange(4))


def test_device_memory_is_released_only_after_running_out_and_never_after_a_failed_capture(
    digits, graphs_on, monkeypatch
):
    trainer = ChildTrainer(digits, CONFIG, "cpu")
    released = []
    monkeypatch.setattr(trainer, "release_device_memory", lambda: released.append(1))
    assert trainer.train(Architecture.parse("c3")).failure == "" and released == []

    def out_of_memory(_generator):
        raise RuntimeError(OOM)

    failed = trainer.train_model("c3", out_of_memory, 100)
    assert failed.failure == f"out of memory: {OOM}" and released == [1]

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("synchronize"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    cuda = ChildTrainer(digits, CONFIG, "cpu")
    cuda.device = torch.device("cuda")  # only the release's own logic runs
    cuda.release_device_memory()
    assert calls == ["synchronize", "empty_cache"]
    monkeypatch.setattr(cuda_graphs, "_FAILURE", "RuntimeError: capture invalidated")
    cuda.release_device_memory()  # the allocator may think a capture is under way: empty_cache would assert
    assert calls == ["synchronize", "empty_cache"]


def test_only_the_capturable_adam_warning_of_the_warm_up_steps_is_hidden():
    message = (
        "This instance was constructed with capturable=True or some of all the param_groups came with "
        "capturable=True, but step() is running without CUDA graph capture. If you never intend to graph-capture "
        "this instance, capturable=True can impair performance, and you should set capturable=False."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with cuda_graphs._uncaptured_capturable_step():
            warnings.warn(message, UserWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
        warnings.warn(message, UserWarning, stacklevel=1)  # outside the warm-up steps it is shown
    assert [str(w.message) for w in caught] == ["something else", message]


# -- 3. GPU ids of reused Ray workers --------------------------------------------------------------------------
def test_a_task_trains_on_the_index_of_its_ray_gpu_among_those_cuda_sees():
    assert ray_backend.cuda_gpus(None, lambda: 4) == ("0", "1", "2", "3")
    assert ray_backend.cuda_gpus("2,3", lambda: 0) == ("2", "3") and ray_backend.cuda_gpus("", lambda: 2) == ()
    every_gpu = ray_backend.cuda_gpus(None, lambda: 4)  # a worker that Ray leaves CUDA_VISIBLE_DEVICES alone in
    assert [ray_backend.task_cuda_device([gpu], every_gpu) for gpu in (0, 3, 1)] == ["cuda:0", "cuda:3", "cuda:1"]
    assert ray_backend.task_cuda_device(["3"], ("2", "3")) == "cuda:1"  # a node started with CUDA_VISIBLE_DEVICES=2,3
    assert ray_backend.task_cuda_device(["GPU-7f2a"], ("GPU-7f2a",)) == "cuda:0"
    narrowed = ray_backend.cuda_gpus("1", lambda: 4)  # CUDA started when Ray had set this task's GPU only
    assert ray_backend.task_cuda_device([1], narrowed) == "cuda:0"
    with pytest.raises(NasGymError, match=r"Ray gave this task GPU 0, but CUDA in its worker process .* only GPUs 1"):
        ray_backend.task_cuda_device([0], narrowed)  # a reused worker's next task, given another GPU
    with pytest.raises(NasGymError, match="without a GPU"):
        ray_backend.task_cuda_device([], every_gpu)


def test_gpu_tasks_keep_cuda_visible_devices_and_cpu_tasks_are_unchanged():
    class Remote:
        def options(self, **options):
            return options

    task = ray_backend._Task(Remote())
    assert task.options(num_cpus=1, num_gpus=0.0) == {"num_cpus": 1, "num_gpus": 0.0}
    assert task.options(num_gpus=0.5)["runtime_env"] == ray_backend.GPU_RUNTIME_ENV


# -- 4. out of memory beside other trainings ------------------------------------------------------------------
def test_out_of_memory_beside_concurrent_trainings_is_retrained_alone(digits, tmp_path, monkeypatch):
    networks = [Architecture.parse(text) for text in ("c3-m2", "a2-c1", "c5")]
    expected = [e.accuracy for e in TrainingEvaluator(digits, CONFIG, "cpu").evaluate(networks)]
    evaluator = TrainingEvaluator(digits, CONFIG, "cpu", tmp_path / "rewards.sqlite", concurrency=2)
    trainer, crowded, recorded = evaluator.trainer, [], []
    train_model, record = trainer.train_model, evaluator._record

    def crowded_out(name, build, *args, **kwargs):
        if name == "a2-c1" and not crowded:  # the first training of it runs out of memory beside another

            def build(_generator):
                crowded.append(threading.current_thread().name)
                raise RuntimeError(OOM)

        return train_model(name, build, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_model", crowded_out)
    monkeypatch.setattr(evaluator, "_record", lambda key, *rest: (recorded.append(key), record(key, *rest)))
    rewards = evaluator.evaluate(networks)
    assert crowded and crowded[0].startswith("nasgym-train")  # it did fail, in a worker thread
    assert [e.accuracy for e in rewards] == expected and all(e.failure == "" for e in rewards)
    key = evaluator.key(networks[1])
    assert recorded[-1] == key and len(recorded) == 3 and evaluator.stats.trained == 3  # recorded once, last
    stored = RewardCache(tmp_path / "rewards.sqlite").get(key)
    assert stored.failure == "" and stored.accuracy == expected[1]


def test_out_of_memory_on_a_fraction_of_a_gpu_is_retrained_on_a_whole_one(digits, tmp_path, monkeypatch):
    """The driver's side of ``ray_task_gpus=0.5``, with a fake Ray: a network that ran out of memory on half a GPU is
    trained again, after the batch, in a task on a whole GPU; only that reward is recorded."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install nasgym[ray] (CI installs it)")
    submitted = []

    class Task:
        def __init__(self, gpus: float):
            self.gpus = gpus

        def remote(self, _box, _config, device, network):
            submitted.append((str(network), self.gpus, device))
            failure = f"out of memory: {OOM}" if self.gpus < 1 and str(network) == "c5" else ""
            return Evaluation(str(network), 0.0 if failure else 0.5, 1.0, 10, failure)

    class Remote:
        @staticmethod
        def options(num_gpus: float, **_options) -> Task:
            return Task(num_gpus)

    monkeypatch.setattr(ray_backend, "connect", lambda _address=None: ReadyRay)
    monkeypatch.setattr(ray_backend, "share_dataset", lambda _data: "ref")
    monkeypatch.setattr(ray_backend, "_remote_task", Remote)
    path = tmp_path / "rewards.sqlite"
    evaluator = ray_backend.RayEvaluator(digits, CONFIG, "cuda", path, task_gpus=0.5)
    rewards = evaluator.evaluate([Architecture.parse(text) for text in ("c3", "c5", "m2-c3")])
    assert [e.failure for e in rewards] == ["", "", ""]
    assert sorted(submitted[:3]) == [("c3", 0.5, "cuda"), ("c5", 0.5, "cuda"), ("m2-c3", 0.5, "cuda")]
    assert submitted[3:] == [("c5", 1.0, "cuda")]  # after the batch, on a whole GPU
    assert RewardCache(path).get(evaluator.key(Architecture.parse("c5"))).failure == ""


def test_the_up_front_memory_check_counts_the_tasks_share_of_the_device(digits):
    trainer = ChildTrainer(digits, CONFIG, "cpu")
    parameters = int(0.3 * memory_bytes(trainer.device) / 16)  # weights, gradients and Adam: 30% of the memory
    assert trainer._too_big(parameters) is None
    trainer.memory_share = 0.25
    assert "(its share 0.25)" in trainer._too_big(parameters)


# -- 5. a last batch of one image ------------------------------------------------------------------------------
def adam_steps(monkeypatch) -> list[int]:
    steps, step = [], torch.optim.Adam.step

    def counting(self, *args, **kwargs):
        steps.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting)
    return steps


def test_a_last_single_image_that_batch_norm_cannot_take_is_skipped_and_only_then(monkeypatch):
    data = load_dataset("digits", TINY["image_size"], max_samples=301)
    config = TrainConfig(epochs=2, batch_size=60)  # 181 training images: 3 batches of 60, then 1 image
    trainer = ChildTrainer(data, config, "cpu")
    assert trainer.n_train == 3 * 60 + 1 and ONE_BY_ONE.spatial_sizes(TINY["image_size"])[-1] == 1
    model = build_network(ONE_BY_ONE, data.n_classes, TINY["image_size"]).train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        model(torch.rand(1, 3, 16, 16))  # what the last batch met before

    steps = adam_steps(monkeypatch)
    result = trainer.train(ONE_BY_ONE)
    assert result.failure == "" and 0 < result.accuracy <= 1 and len(steps) == 2 * 3  # the single image dropped
    steps.clear()
    assert trainer.train(Architecture.parse("m2-c3")).failure == "" and len(steps) == 2 * 4  # 3x3 maps: all kept
    steps.clear()
    running = ChildTrainer(data, dataclasses.replace(config, network=NetworkConfig(batch_norm="running_stats")), "cpu")
    assert running.train(ONE_BY_ONE).failure == "" and len(steps) == 2 * 4  # no batch statistics: all kept


def test_the_probe_changes_nothing_and_sees_only_batch_statistics_norms():
    model = build_network(ONE_BY_ONE, 10, 16)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    assert _one_image_breaks_batch_norm(model, torch.rand(1, 3, 16, 16))
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert not _one_image_breaks_batch_norm(
        build_network(Architecture.parse("m2-c3"), 10, 16), torch.rand(1, 3, 16, 16)
    )
    running = build_network(ONE_BY_ONE, 10, 16, NetworkConfig(batch_norm="running_stats"))
    assert not _one_image_breaks_batch_norm(running, torch.rand(1, 3, 16, 16))


# -- on a GPU --------------------------------------------------------------------------------------------------
@needs_cuda
def test_concurrent_trainings_on_a_gpu_get_the_rewards_of_one_at_a_time_each_on_its_own_stream():
    data = load_dataset("digits", 28)
    config = TrainConfig(epochs=2, batch_size=128)
    networks = [Architecture.parse(text) for text in ("c3-m2", "c5", "c3-c3-m2", "m2-c1", "c5-m2-c3", "a2-c3")]
    alone = TrainingEvaluator(data, config, "cuda").evaluate(networks)
    together = TrainingEvaluator(data, config, "cuda", concurrency=4).evaluate(networks)
    for one, four in zip(alone, together, strict=True):
        assert one.failure == four.failure == "" and "CUDA graph" in four.execution and "failed" not in four.execution
        assert abs(one.accuracy - four.accuracy) < 0.05, (one, four)  # cuDNN's backward is not bit-reproducible
    from nasgym.core.training.streams import THREAD_STREAMS

    streams = run_in_threads(8, lambda: THREAD_STREAMS.stream(torch.device("cuda")).cuda_stream)
    assert len(set(streams)) == 8


CAPTURE_FAILURE_ON_A_GPU = """
import torch
from torch import nn
from nasgym.core.datasets import load_dataset
from nasgym.core.network import build_network
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer, TrainConfig, cuda_graphs


class SyncsWhileCapturing(nn.Module):  # a host sync inside the captured step invalidates the capture
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if torch.cuda.is_current_stream_capturing():
            x.sum().item()
        return self.inner(x)


data = load_dataset("digits", 28)
trainer = ChildTrainer(data, TrainConfig(epochs=2, batch_size=64), "cuda")
network = Architecture.parse("c3-m2")


def build(generator):
    return SyncsWhileCapturing(build_network(network, 10, 28, dropout_generator=generator))


failed = trainer.train_model("broken", build, 1)
assert cuda_graphs.capture_failure() is not None, failed
assert "capture failed, trained eagerly" in failed.execution and failed.failure == "", failed
for text in ("c3-m2", "c5", "m2-c3"):
    later = trainer.train(Architecture.parse(text))
    assert later.failure == "" and later.accuracy > 0.3 and "CUDA graphs off" in later.execution, later
trainer.release_device_memory()  # must not call empty_cache, which may now fail an internal assertion
print("ok")
"""


@needs_cuda
def test_a_failed_capture_on_a_gpu_leaves_later_trainings_working():
    """In a process of its own: the failed capture may leave PyTorch's allocator unusable for empty_cache."""
    result = subprocess.run(
        [sys.executable, "-c", CAPTURE_FAILURE_ON_A_GPU], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
