"""DQN (Mnih et al. 2015) with NasGym's settings, written out CleanRL-style and unable to choose an invalid action.

The Q-network reads the space model's features (the one-hot NSC in NAS-v0) and masks itself: from the observation
alone the environment's ``SpaceModel`` gives the valid actions, and the others get the lowest Q-value. Greedy
actions and the target's max over next actions are therefore taken over valid actions only; exploration samples
uniformly among valid actions (``mask_invalid=False``: among all 8, as NasGym's DQN did).

By default it is stable-baselines3's plain DQN: a ReLU MLP, the target network's max as the bootstrap, the Huber
loss, Adam, gradients clipped to norm 10, the target network copied every ``target_update_interval`` steps. NasGym
ran the DQN of its baselines fork, whose defaults were double Q-learning and a dueling head on a tanh 64-64 MLP with
one 256-unit ReLU layer in each stream; ``double_q``, ``dueling``, ``activation`` and ``head_hiddens`` give it.

A trial (``reset_trial``) starts with an empty replay buffer, sized at its first ``learn`` call, and with the
warm-up and epsilon's decay counted from there; epsilon falls linearly to ``exploration_final_eps`` over
``exploration_fraction`` of the trial's steps up to the end of the current ``learn`` call. Sampling uses generators
that are saved with the agent (the replay buffer's, the exploration's), and a step reaches the caller's callback only
once it is stored and trained on, so a checkpoint saved from a callback resumes exactly.

The env is a vector env of ``N >= 1`` copies: the copies' Q-values are one batch, there is one epsilon draw per vector
step, and one gradient step per ``train_freq`` transitions, however many copies there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents import encoding
from agents.base import Agent, StepCallback, seeded
from agents.encoding import masked_logits, one_thread
from agents.hyperparameters import (
    Fraction,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    Seed,
    validate,
)
from agents.replay_buffer import ReplayBuffer
from nasgym.core.space_model import SpaceModel
from nasgym.core.vector_env import copy_info


@dataclass
class DQNConfig:
    learning_rate: PositiveFloat = 5e-4
    """Adam's learning rate (NasGym: 5e-4)."""
    buffer_size: PositiveInt | None = None
    """Replay capacity in transitions; None: half the steps of a trial's first ``learn`` call (NasGym). A buffer
    larger than the free memory is refused with a ConfigError, not shrunk: give a smaller buffer_size."""
    exploration_initial_eps: Fraction = 1.0
    """Epsilon of epsilon-greedy at the start (NasGym: 1.0)."""
    exploration_final_eps: Fraction = 0.1
    """Epsilon at the end of the decay (NasGym: 0.1)."""
    exploration_fraction: Annotated[float, Range(0, 1, low_included=False, high_included=True)] = 1.0
    """Fraction of a trial's ``learn`` calls over which epsilon falls linearly (NasGym: all of it)."""
    batch_size: PositiveInt = 20
    """Transitions per gradient step (NasGym: 20)."""
    gamma: Fraction = 1.0
    """Discount (NasGym: 1.0; episodes are at most max_layers steps)."""
    target_update_interval: PositiveInt = 100
    """Steps between copies of the Q-network into the target network (NasGym: 100)."""
    learning_starts: NonNegativeInt = 20
    """Steps of uniform valid actions before the first gradient step (one batch; baselines' default of 1000, which
    NasGym's runs used, was 15% of its 6,500-step runs and would exceed a short search)."""
    train_freq: PositiveInt = 1
    """Environment steps per gradient step (NasGym, via baselines: 1)."""
    net_arch: tuple[PositiveInt, ...] = (64, 64)
    """Hidden layers of the Q-network's trunk (SB3's MLP and baselines' `mlp`: 64, 64)."""
    activation: Literal["relu", "tanh"] = "relu"
    """The trunk's activation (SB3: ReLU; baselines' `mlp`, which NasGym's DQN ran: tanh)."""
    head_hiddens: tuple[PositiveInt, ...] = ()
    """ReLU layers of each head stream after the trunk (baselines' deepq head: 256)."""
    dueling: bool = False
    """A dueling head: Q = V + A - mean(A) from a value and an advantage stream (baselines' deepq: True)."""
    double_q: bool = False
    """Double Q-learning: the online network picks the next action, the target network values it (baselines'
    deepq: True)."""
    mask_invalid: bool = True
    """Choose only among valid actions; False explores over all 8 and lets the environment end invalid episodes."""
    max_grad_norm: PositiveFloat = 10.0
    """Gradients are clipped to this global norm (baselines and SB3: 10)."""
    seed: Seed = 0
    """Seeds the initial weights, exploration and replay sampling."""

    def __post_init__(self) -> None:
        validate(self)


def mlp(width: int, hiddens: tuple[int, ...], activation: type[nn.Module]) -> list[nn.Module]:
    """A Linear and an activation per hidden layer."""
    layers: list[nn.Module] = []
    for hidden in hiddens:
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    return layers


class QNetwork(nn.Module):
    """Q-values with invalid actions at the lowest value, so argmax and max see only valid actions.

    ``q_net`` is the trunk (``net_arch``) then the advantage stream (``head_hiddens``, then one output per action) in
    one ``nn.Sequential``; a dueling head adds ``value``, a stream of the same shape with one output, on the trunk.
    """

    def __init__(self, space: SpaceModel, cfg: DQNConfig):
        super().__init__()
        self.space, self.mask_invalid, self.dueling = space, cfg.mask_invalid, cfg.dueling
        trunk = mlp(space.feature_size, cfg.net_arch, {"relu": nn.ReLU, "tanh": nn.Tanh}[cfg.activation])
        width = cfg.net_arch[-1] if cfg.net_arch else space.feature_size
        stream_width = cfg.head_hiddens[-1] if cfg.head_hiddens else width
        self.trunk_layers = len(trunk)
        stream = mlp(width, cfg.head_hiddens, nn.ReLU)
        self.q_net = nn.Sequential(*trunk, *stream, nn.Linear(stream_width, space.n_actions))
        if cfg.dueling:
            self.value = nn.Sequential(*mlp(width, cfg.head_hiddens, nn.ReLU), nn.Linear(stream_width, 1))

    def features(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        """What the network reads from observations (the space model's features)."""
        return encoding.features(self.space, observations)

    def forward(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        hidden = self.q_net[: self.trunk_layers](self.features(observations))
        q_values = self.q_net[self.trunk_layers :](hidden)
        if self.dueling:
            q_values = self.value(hidden) + q_values - q_values.mean(dim=1, keepdim=True)
        return masked_logits(q_values, encoding.masks(self.space, observations, self.mask_invalid))


class DQN:
    """What DQN learns with: the online and target Q-networks (``networks``), Adam on the online one, the replay
    buffer, and ``train``, one round of gradient steps."""

    def __init__(self, space: SpaceModel, observation_space: gym.Space, num_envs: int, cfg: DQNConfig):
        with seeded(cfg.seed):
            self.q_net = QNetwork(space, cfg)
            self.q_net_target = QNetwork(space, cfg)
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.networks = nn.ModuleDict({"q_net": self.q_net, "q_net_target": self.q_net_target})
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.learning_rate)
        self.replay_buffer = ReplayBuffer(observation_space, num_envs, seed=cfg.seed)
        self.gamma, self.double_q, self.max_grad_norm = cfg.gamma, cfg.double_q, cfg.max_grad_norm
        self.n_updates = 0
        """Gradient steps taken over the agent's life."""

    def train(self, gradient_steps: int, batch_size: int) -> float:
        """``gradient_steps`` Huber-loss steps on replayed batches; the mean loss."""
        losses = []
        with one_thread():
            for _ in range(gradient_steps):
                batch = self.replay_buffer.sample(batch_size)
                with torch.no_grad():
                    next_q = self.q_net_target(batch.next_observations)
                    if self.double_q:  # the online network picks the next action, the target network values it
                        chosen = self.q_net(batch.next_observations).argmax(dim=1, keepdim=True)
                        next_values = next_q.gather(1, chosen)
                    else:
                        next_values = next_q.max(dim=1, keepdim=True).values
                    targets = batch.rewards + (1 - batch.dones) * self.gamma * next_values
                current = self.q_net(batch.observations).gather(1, batch.actions)
                loss = nn.functional.smooth_l1_loss(current, targets)
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.q_net.parameters(), self.max_grad_norm)
                self.optimizer.step()
                losses.append(loss.item())
        self.n_updates += gradient_steps
        return float(np.mean(losses))

    def update_target(self) -> None:
        self.q_net_target.load_state_dict(self.q_net.state_dict())


def linear_schedule(start: float, end: float, duration: float, progress: float) -> float:
    """From ``start`` at progress 0 to ``end`` at progress ``duration``, then ``end``."""
    return start + min(progress / duration, 1.0) * (end - start)


def multiples(every: int, before: int, after: int) -> int:
    """How many multiples of ``every`` a count passed going from ``before`` to ``after``: what is due each
    ``every`` steps, over a vector step of several."""
    return after // every - before // every


class DQNAgent(Agent):
    name = "dqn"
    Config = DQNConfig

    def __init__(self, env: gym.Env, config: DQNConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        cfg = self.config
        self.model = DQN(self.space, self.vec_env.single_observation_space, self.num_envs, cfg)
        self.exploration_rng = np.random.default_rng(cfg.seed)
        self.exploration_rate = cfg.exploration_initial_eps
        """Epsilon now: set after each learning step, kept by ``play``."""
        self.trial_start = 0
        """``num_timesteps`` at the trial's first learn call: the warm-up and epsilon's decay count from there."""

    @property
    def policy(self) -> nn.Module:
        """The Q-network and its target."""
        return self.model.networks

    @property
    def replay_buffer(self) -> ReplayBuffer:
        return self.model.replay_buffer

    # -- acting -------------------------------------------------------------------------------------------
    def _random_actions(self, observations: np.ndarray) -> np.ndarray:
        """Per copy, an action drawn uniformly among the valid ones (among all 8 with ``mask_invalid=False``)."""
        allowed = encoding.masks(self.space, observations, self.config.mask_invalid).numpy()
        return np.array([self.exploration_rng.choice(np.flatnonzero(row)) for row in allowed])

    def _act(self, observations: np.ndarray, epsilon: float) -> np.ndarray:
        """Epsilon-greedy over a batch of observations, one draw deciding for every copy (as SB3 and CleanRL do);
        epsilon 1 is the warm-up's uniform choice."""
        if epsilon > 0 and self.exploration_rng.random() < epsilon:
            return self._random_actions(observations)
        with torch.no_grad(), one_thread():
            return self.model.q_net(observations).argmax(dim=1).numpy()

    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        epsilon = 0.0 if deterministic else self.exploration_rate
        return int(self._act(np.asarray(observation)[None], epsilon)[0]), state

    # -- learning -----------------------------------------------------------------------------------------
    def _learn(self, total_steps: int, callback: StepCallback | None) -> DQNAgent:
        cfg, model, buffer, copies = self.config, self.model, self.model.replay_buffer, self.num_envs
        if not buffer.allocated:  # the trial's first learn call: a new buffer, and exploration from the start
            capacity, origin = cfg.buffer_size, "buffer_size"
            if capacity is None:  # NasGym: a buffer of half the run
                capacity, origin = max(total_steps // 2, 1), f"half of the {total_steps:,} steps to learn"
            buffer.allocate(capacity, origin)
            self.trial_start, self.exploration_rate = self.num_timesteps, cfg.exploration_initial_eps
        end = self.num_timesteps + total_steps  # epsilon reaches its final value here
        while self.num_timesteps < end:
            # Act: uniformly among valid actions while warming up, then epsilon-greedy.
            observations = self._observations("learn")
            warming_up = self.num_timesteps - self.trial_start < cfg.learning_starts
            actions = self._act(observations, 1.0 if warming_up else self.exploration_rate)
            next_observations, rewards, terminated, truncated, infos = self.vec_env.step(actions)
            self._observation = next_observations  # the copies that ended have already started their next episode
            dones = np.logical_or(terminated, truncated)

            # Store: an ended episode's next observation is its final one, not the next episode's first.
            final_observations = np.array(next_observations)
            for copy in np.flatnonzero(dones):
                final_observations[copy] = infos["final_obs"][copy]
            buffer.add(observations, final_observations, actions, rewards, terminated, truncated)
            self.num_timesteps += copies

            # Train: one gradient step per train_freq transitions once the warm-up is over; copy to the target.
            trial_steps = self.num_timesteps - self.trial_start
            gradient_steps = multiples(cfg.train_freq, trial_steps - copies, trial_steps)
            loss = None
            if trial_steps > cfg.learning_starts and gradient_steps > 0:
                loss = model.train(gradient_steps, cfg.batch_size)
            if multiples(cfg.target_update_interval, self.num_timesteps - copies, self.num_timesteps):
                model.update_target()
            progress = trial_steps / (end - self.trial_start)
            self.exploration_rate = linear_schedule(
                cfg.exploration_initial_eps, cfg.exploration_final_eps, cfg.exploration_fraction, progress
            )

            if loss is not None:
                self._report({"loss": loss, "exploration_rate": self.exploration_rate})
            copy_infos = [copy_info(infos, copy) for copy in range(copies)]
            if not self._notify_copies(callback, self.num_timesteps - copies, rewards, dones, copy_infos):
                break
        return self

    def reset_trial(self) -> None:
        """Also empty the replay buffer: its transitions belong to the last trial's dataset. The next ``learn``
        sizes a new one and starts epsilon again from ``exploration_initial_eps``; until then ``play`` keeps the
        epsilon training left."""
        super().reset_trial()
        self.replay_buffer.release()

    # -- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.model.networks.state_dict(),  # the Q-network and its target
            "optimizer": self.model.optimizer.state_dict(),
            "counters": {
                "n_updates": self.model.n_updates,
                "trial_start": self.trial_start,
                "exploration_rate": self.exploration_rate,
            },
            "exploration_rng": self.exploration_rng.bit_generator.state,
            "replay_buffer": self.replay_buffer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.networks.load_state_dict(state["policy"])
        self.model.optimizer.load_state_dict(state["optimizer"])
        counters = state["counters"]
        self.model.n_updates = int(counters["n_updates" if "n_updates" in counters else "_n_updates"])  # or SB3's
        self.trial_start = int(counters["trial_start"])
        self.exploration_rate = float(counters["exploration_rate"])
        self.exploration_rng.bit_generator.state = state["exploration_rng"]
        self.replay_buffer.load_state_dict(state["replay_buffer"])
