"""DQN: stable-baselines3's, with NasGym's settings, unable to choose an invalid action.

SB3's DQN has no action masks, so the Q-network masks itself: from the observation alone the environment's
``SpaceModel`` gives the valid actions, and the others get the lowest Q-value. Greedy actions and the target's
max over next actions are therefore taken over valid actions only; exploration samples uniformly among valid
actions (``mask_invalid=False``: among all 8, as NasGym's DQN did). The Q-network reads the space model's features
(the one-hot NSC in NAS-v0), like the other learning agents.

By default it is SB3's plain DQN: a ReLU MLP, the target's max as the bootstrap. NasGym ran the DQN of its
baselines fork, whose defaults were double Q-learning and a dueling head on a tanh 64-64 MLP with one 256-unit
ReLU layer in each stream; ``double_q``, ``dueling``, ``activation`` and ``head_hiddens`` give it.

A trial (``reset_trial``) starts with an empty replay buffer, sized at its first ``learn`` call, and with the
warm-up and epsilon's decay counted from there. For an exact resume, sampling uses generators that are saved
with the agent (the replay buffer's own, the exploration's own), a step reaches the caller's callback only
after SB3 has stored it and trained on it, and the checkpoint holds what SB3 continues from as tensors and
numbers: the networks, the optimiser, the counters and schedules, the buffer's arrays. Never SB3's own zip,
whose loading un-pickles objects and so could run code from a file someone sent.

With a vector env of ``N`` copies it is SB3's multi-environment DQN (``n_envs=N``, through ``agents.sb3_vector``, so
the copies' networks are evaluated as one batch): one epsilon draw per vector step, as SB3 does, and ``N`` gradient
steps per ``train_freq`` vector steps, so that there is one gradient step per ``train_freq`` transitions as with one
environment.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from agents.base import Agent, StepCallback, is_vector, seeded
from agents.encoding import features, masked_logits, masks, one_thread
from agents.hyperparameters import (
    Fraction,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    Seed,
    validate,
)
from agents.replay_buffer import SeededReplayBuffer
from agents.sb3_vector import GymnasiumVecEnv
from nasgym.core.space_model import SpaceModel

COUNTERS = {
    "num_timesteps": int,
    "_n_updates": int,
    "_n_calls": int,
    "_episode_num": int,
    "_total_timesteps": int,
    "_num_timesteps_at_start": int,
    "_current_progress_remaining": float,
    "exploration_rate": float,
    "learning_starts": int,
    "trial_start": int,
}
"""SB3's counters and schedule state (and this module's trial start) that a resumed ``learn`` continues from."""


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


class SpaceFeatures(BaseFeaturesExtractor):
    """What the environment's space model gives a network to read (the one-hot NSC in NAS-v0)."""

    def __init__(self, observation_space: spaces.Space, space: SpaceModel):
        super().__init__(observation_space, space.feature_size)
        self.space = space

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return features(self.space, observations)


class MaskedQNetwork(QNetwork):
    """Q-values with invalid actions at the lowest value, so argmax and max see only valid actions.

    ``q_net`` is the trunk (``net_arch``) then the advantage stream (``head_hiddens``, then one output per action),
    in one ``nn.Sequential`` as SB3 builds it; a dueling head adds ``value``, a stream of the same shape with one
    output, on the trunk's output.
    """

    def __init__(
        self,
        *args: Any,
        head_hiddens: tuple[int, ...] = (),
        dueling: bool = False,
        mask_invalid: bool = True,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.dueling, self.mask_invalid = dueling, mask_invalid
        self.trunk_layers = 2 * len(self.net_arch)  # a Linear and an activation per hidden layer
        width = self.net_arch[-1] if self.net_arch else self.features_dim
        if head_hiddens or dueling:  # else SB3's q_net is already trunk and stream (and keeps its initial weights)
            trunk = create_mlp(self.features_dim, 0, self.net_arch, self.activation_fn)
            stream = create_mlp(width, int(self.action_space.n), list(head_hiddens), nn.ReLU)
            self.q_net = nn.Sequential(*trunk, *stream)
        if dueling:
            self.value = nn.Sequential(*create_mlp(width, 1, list(head_hiddens), nn.ReLU))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        hidden = self.q_net[: self.trunk_layers](self.extract_features(obs, self.features_extractor))
        q_values = self.q_net[self.trunk_layers :](hidden)
        if self.dueling:
            q_values = self.value(hidden) + q_values - q_values.mean(dim=1, keepdim=True)
        return masked_logits(q_values, masks(self.features_extractor.space, obs, self.mask_invalid))


class MaskedDQNPolicy(DQNPolicy):
    def __init__(self, *args: Any, q_net_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        self.q_net_kwargs = q_net_kwargs or {}  # read by make_q_net, which the base constructor calls
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> MaskedQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return MaskedQNetwork(**net_args, **self.q_net_kwargs).to(self.device)


class MaskedDQN(DQN):
    """SB3's DQN whose exploration (warm-up and epsilon steps) picks uniformly among valid actions, and whose
    warm-up and epsilon schedule count from the start of the trial rather than of the agent's life."""

    exploration_rng: np.random.Generator
    trial_start: int = 0
    """``num_timesteps`` at the trial's first learn call."""
    double_q: bool = False
    mask_invalid: bool = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # SB3's default logger leaves an empty SB3-<date> folder in the temporary directory at every learn.
        self.set_logger(Logger(folder=None, output_formats=[]))

    def start_trial(self, learning_starts: int) -> None:
        """Warm up for ``learning_starts`` steps from now, and decay epsilon from its initial value again."""
        self.trial_start = self.num_timesteps
        self.learning_starts = self.num_timesteps + learning_starts
        self.exploration_rate = self.exploration_initial_eps

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        """SB3's progress (epsilon's clock), over this trial's steps."""
        done, total = num_timesteps - self.trial_start, total_timesteps - self.trial_start
        self._current_progress_remaining = 1.0 - done / total

    def _random_valid_actions(self, observation: np.ndarray) -> np.ndarray:
        space = self.q_net.features_extractor.space
        batch = np.ndim(observation) > len(space.observation_space.shape)
        valid = space.masks(np.asarray(observation)).reshape(-1, int(self.action_space.n))
        if not self.mask_invalid:
            valid = np.ones_like(valid)
        actions = np.array([self.exploration_rng.choice(np.flatnonzero(row)) for row in valid])
        return actions if batch else actions[0]

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        if not deterministic and self.exploration_rng.random() < self.exploration_rate:
            return self._random_valid_actions(observation), state
        with one_thread():
            return self.policy.predict(observation, state, episode_start, deterministic)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1):
        if self.num_timesteps < learning_starts:
            action = self._random_valid_actions(self._last_obs)
        else:
            action, _ = self.predict(self._last_obs, deterministic=False)
        return action, action

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        with one_thread():
            if self.double_q:
                self._train_double_q(gradient_steps, batch_size)
            else:
                super().train(gradient_steps, batch_size)

    def _train_double_q(self, gradient_steps: int, batch_size: int) -> None:
        """SB3's DQN update with the double-Q target r + gamma * Q_target(s', argmax_a Q_online(s', a))."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            with torch.no_grad():
                chosen = self.q_net(batch.next_observations).argmax(dim=1, keepdim=True)
                next_values = self.q_net_target(batch.next_observations).gather(1, chosen)
                targets = batch.rewards + (1 - batch.dones) * self.gamma * next_values
            current = self.q_net(batch.observations).gather(1, batch.actions.long())
            loss = nn.functional.smooth_l1_loss(current, targets)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))


class _StopLearning(Exception):
    """The caller's callback asked to stop."""


class _CallbackBridge(BaseCallback):
    """Delivers each SB3 step to a nasgym callback once DQN has fully processed it: SB3 calls ``on_step``
    before storing the transition and training on it, so the event waits for the next rollout start (or the
    end of learning)."""

    def __init__(self, agent: DQNAgent, callback: StepCallback | None):
        super().__init__()
        self.agent, self.callback = agent, callback
        self.pending: dict[str, Any] | None = None
        self.reported_updates = agent.model._n_updates

    def _on_step(self) -> bool:
        self.pending = {key: self.locals[key] for key in ("rewards", "dones", "infos")}
        return True

    def _on_rollout_start(self) -> None:
        self._deliver()

    def _on_training_end(self) -> None:
        self._deliver()

    def _deliver(self) -> None:
        if self.pending is None:
            return
        event, self.pending = self.pending, None
        agent, model = self.agent, self.agent.model
        agent.num_timesteps = model.num_timesteps
        if model._n_updates > self.reported_updates:
            self.reported_updates = model._n_updates
            loss = float(model.logger.name_to_value["train/loss"])
            agent._report({"loss": loss, "exploration_rate": model.exploration_rate})
        first = agent.num_timesteps - agent.num_envs
        if not agent._notify_copies(self.callback, first, event["rewards"], event["dones"], event["infos"]):
            raise _StopLearning


class DQNAgent(Agent):
    name = "dqn"
    Config = DQNConfig

    def __init__(self, env, config: DQNConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        cfg = self.config
        with seeded(cfg.seed):
            self.model = MaskedDQN(
                MaskedDQNPolicy,
                GymnasiumVecEnv(env) if is_vector(env) else env,
                learning_rate=cfg.learning_rate,
                buffer_size=0,  # SeededReplayBuffer gets its storage at the trial's first learn call
                learning_starts=cfg.learning_starts,
                batch_size=cfg.batch_size,
                tau=1.0,
                gamma=cfg.gamma,
                train_freq=cfg.train_freq,
                gradient_steps=self.num_envs,  # one per train_freq transitions, however many copies
                target_update_interval=cfg.target_update_interval,
                exploration_fraction=cfg.exploration_fraction,
                exploration_initial_eps=cfg.exploration_initial_eps,
                exploration_final_eps=cfg.exploration_final_eps,
                max_grad_norm=cfg.max_grad_norm,
                replay_buffer_class=SeededReplayBuffer,
                replay_buffer_kwargs={"seed": cfg.seed},
                policy_kwargs={
                    "net_arch": list(cfg.net_arch),
                    "activation_fn": {"relu": nn.ReLU, "tanh": nn.Tanh}[cfg.activation],
                    "features_extractor_class": SpaceFeatures,
                    "features_extractor_kwargs": {"space": self.space},
                    "q_net_kwargs": {
                        "head_hiddens": tuple(cfg.head_hiddens),
                        "dueling": cfg.dueling,
                        "mask_invalid": cfg.mask_invalid,
                    },
                },
                device="cpu",
            )
        self.model.exploration_rng = np.random.default_rng(cfg.seed)
        self.model.double_q, self.model.mask_invalid = cfg.double_q, cfg.mask_invalid

    @property
    def policy(self) -> nn.Module:
        return self.model.policy

    @property
    def replay_buffer(self) -> SeededReplayBuffer:
        return self.model.replay_buffer

    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        action, _ = self.model.predict(observation, deterministic=deterministic)
        return int(action), state

    def _learn(self, total_steps: int, callback: StepCallback | None) -> DQNAgent:
        if not self.replay_buffer.allocated:  # the trial's first learn call
            capacity = self.config.buffer_size
            origin = "buffer_size"
            if capacity is None:  # NasGym: a buffer of half the run
                capacity, origin = max(total_steps // 2, 1), f"half of the {total_steps:,} steps to learn"
            self.replay_buffer.allocate(capacity, origin)
            self.model.buffer_size = capacity
            self.model.start_trial(self.config.learning_starts)
        self._observation = None  # SB3 keeps this episode; a later play starts its own
        with contextlib.suppress(_StopLearning):
            bridge = _CallbackBridge(self, callback)
            self.model.learn(total_steps, callback=bridge, log_interval=None, reset_num_timesteps=False)
        self.num_timesteps = self.model.num_timesteps
        return self

    def _play(self, total_steps: int, callback: StepCallback | None, deterministic: bool) -> DQNAgent:
        super()._play(total_steps, callback, deterministic)
        self.model._last_obs = None  # the environment moved under SB3: its next learn starts a new episode
        return self

    def reset_trial(self) -> None:
        """Also empty the replay buffer: its transitions belong to the last trial's dataset. The next ``learn``
        sizes a new one and starts epsilon again from ``exploration_initial_eps``; until then ``play`` keeps the
        epsilon training left."""
        super().reset_trial()
        self.model._last_obs = None
        self.replay_buffer.release()

    def state_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "policy": model.policy.state_dict(),  # the Q-network and its target
            "optimizer": model.policy.optimizer.state_dict(),
            "counters": {name: kind(getattr(model, name)) for name, kind in COUNTERS.items()},
            "exploration_rng": model.exploration_rng.bit_generator.state,
            "replay_buffer": self.replay_buffer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = self.model
        model.policy.load_state_dict(state["policy"])
        model.policy.optimizer.load_state_dict(state["optimizer"])
        for name, kind in COUNTERS.items():
            setattr(model, name, kind(state["counters"][name]))
        model.exploration_rng.bit_generator.state = state["exploration_rng"]
        self.replay_buffer.load_state_dict(state["replay_buffer"])
        model.buffer_size = self.replay_buffer.buffer_size
        model._last_obs = None  # a loaded agent starts a new episode
