"""Meta-A2C: an LSTM actor-critic that learns to search in context (Wang et al. 2016; NasGym).

At every step the LSTM reads [the space's features (one-hot NSC), one-hot previous action, previous reward, time
step in the episode], so its memory can adapt to the dataset at hand. Policy and value heads share the LSTM. Every
``n_steps`` steps one n-step advantage actor-critic update runs on the stored inputs, replayed through the LSTM
from the memory the rollout started with.

``memory`` says what an episode end does (a trial, a run on one dataset, always starts from zero memory):

* ``rl2`` (default; Duan et al. 2016, Wang et al. 2016): nothing. The memory and the previous action and reward run
  on through the trial, and so do the returns: an n-step return crosses an episode end and bootstraps from the next
  episode's first state, since the trial, not the episode, is what the agent learns to do well.
* ``nasgym``: the LSTM state is zeroed, the previous action and reward are carried into the next episode, and
  returns stop at the episode end (NasGym's runner masks the LSTM with the done flags and keeps both inputs).
* ``episode``: everything is cleared and returns stop: a policy without memory across episodes (a control).

With a vector env of ``N`` copies (``num_envs``) it runs ``N`` trials side by side, each with its own memory, previous
action and reward and rollout; every ``n_steps`` vector steps one update averages the ``N`` rollouts' losses (A2C's
synchronous parallel actors).

Plain PyTorch rather than stable-baselines3's OnPolicyAlgorithm: the recurrent rollout with reward and action
feedback would need a custom rollout buffer, policy and collection loop (as sb3-contrib's RecurrentPPO has),
i.e. most of the algorithm, while the whole of A2C fits here readably top to bottom.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from agents.a2c_rollout import Memory, MetaA2CState, Rollout, n_step_returns, read_rollout, read_trial_state
from agents.base import Agent, StepCallback, seeded
from agents.encoding import features, masked_logits, masks, one_thread
from agents.hyperparameters import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, validate
from nasgym.core.space_model import SpaceModel

__all__ = ["Memory", "MetaA2C", "MetaA2CConfig", "MetaA2CNetwork", "MetaA2CState", "Rollout", "n_step_returns"]


@dataclass
class MetaA2CConfig:
    hidden_size: PositiveInt = 128
    """LSTM units (NasGym: 128)."""
    n_steps: PositiveInt = 5
    """Environment steps per update; returns bootstrap from the value after them (NasGym: 5)."""
    gamma: Fraction = 0.9
    """Discount (NasGym: 0.9)."""
    entropy_coef: NonNegativeFloat = 0.01
    """Weight of the entropy bonus (NasGym: 0.01)."""
    value_coef: NonNegativeFloat = 0.5
    """Weight of the value loss (NasGym: 0.5)."""
    learning_rate: PositiveFloat = 1e-3
    """RMSProp's learning rate (NasGym: 1e-3, constant)."""
    rmsprop_alpha: Fraction = 0.99
    """RMSProp's smoothing constant (baselines' A2C: 0.99)."""
    rmsprop_eps: PositiveFloat = 1e-5
    """RMSProp's epsilon (baselines' A2C: 1e-5)."""
    max_grad_norm: PositiveFloat = 0.5
    """Gradients are clipped to this global norm (NasGym: 0.5)."""
    memory: Literal["rl2", "nasgym", "episode"] = "rl2"
    """What an episode end does to the memory and the returns (module docstring): `rl2` nothing, `nasgym` zero the LSTM
    but carry the previous action and reward and stop returns, `episode` clear everything and stop returns."""
    reward_input: bool = True
    """Feed the previous reward to the LSTM; False feeds 0 (a control: does the policy use rewards in context?)."""
    mask_invalid: bool = True
    """Choose only among valid actions; False samples all 8 and lets the environment end invalid episodes."""
    seed: Seed = 0
    """Seeds the initial weights and the sampling."""

    def __post_init__(self) -> None:
        validate(self)


class MetaA2CNetwork(nn.Module):
    """LSTM(hidden_size) shared by a policy head (logits over actions) and a value head."""

    def __init__(self, space: SpaceModel, hidden_size: int):
        super().__init__()
        self.space = space
        self.lstm = nn.LSTMCell(space.feature_size + space.n_actions + 2, hidden_size)
        self.policy = nn.Linear(hidden_size, space.n_actions)
        self.value = nn.Linear(hidden_size, 1)
        nn.init.orthogonal_(self.policy.weight, gain=0.01)  # near-uniform first policy (baselines' A2C)
        nn.init.zeros_(self.policy.bias)

    def encode(self, observation: np.ndarray, previous_action: int, previous_reward: float) -> torch.Tensor:
        """[space features (one-hot NSC), one-hot previous action (zeros if none), previous reward,
        time step / longest episode]."""
        action = torch.zeros(self.space.n_actions)
        if previous_action >= 0:
            action[previous_action] = 1.0
        time_step = torch.as_tensor(self.space.steps(observation), dtype=torch.float32).reshape(1)
        reward = torch.tensor([float(previous_reward)])
        return torch.cat([features(self.space, observation), action, reward, time_step / self.space.max_steps])

    def forward(self, inputs: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor, Memory]:
        """``inputs`` (batch, features) -> logits (batch, n_actions), values (batch,), new memory."""
        hidden, cell = self.lstm(inputs, memory)
        return self.policy(hidden), self.value(hidden).squeeze(-1), (hidden, cell)


class MetaA2C(Agent):
    name = "meta_a2c"
    Config = MetaA2CConfig

    def __init__(self, env, config: MetaA2CConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        cfg = self.config
        with seeded(cfg.seed):
            self.network = MetaA2CNetwork(self.space, cfg.hidden_size)
        self.optimizer = torch.optim.RMSprop(
            self.network.parameters(), lr=cfg.learning_rate, alpha=cfg.rmsprop_alpha, eps=cfg.rmsprop_eps
        )
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._reset_copies()

    def _reset_copies(self) -> None:
        """Each copy's trial state (its memory: what learn and play act from) and rollout, and whether its episode
        is unfinished."""
        self.trial_states = [self.initial_state() for _ in range(self.num_envs)]
        self.rollouts = [Rollout() for _ in range(self.num_envs)]
        self.mid_episode = [False] * self.num_envs

    @property
    def trial_state(self) -> MetaA2CState:
        """Copy 0's trial state: the trial's, with a plain env."""
        return self.trial_states[0]

    @property
    def rollout(self) -> Rollout:
        """Copy 0's rollout: the rollout, with a plain env."""
        return self.rollouts[0]

    def initial_state(self) -> MetaA2CState:
        zeros = torch.zeros(1, self.config.hidden_size)
        return MetaA2CState((zeros, zeros.clone()))

    def reset_trial(self) -> None:
        """Start a new trial (e.g. a new dataset): clear the memory; an unfinished rollout is dropped."""
        super().reset_trial()
        self._reset_copies()

    @classmethod
    def from_payload(cls, payload: dict[str, Any], env, source: str | Path = "the checkpoint") -> MetaA2C:
        """Checkpoints saved before ``memory`` existed said ``reset_memory_each_episode``; True meant ``episode``."""
        config = dict(payload["config"])
        if "reset_memory_each_episode" in config:
            config["memory"] = "episode" if config.pop("reset_memory_each_episode") else "rl2"
        return super().from_payload({**payload, "config": config}, env, source)

    def _episode_end(self, state: MetaA2CState) -> MetaA2CState:
        """The state the next episode starts from."""
        if self.config.memory == "nasgym":
            return replace(state, memory=self.initial_state().memory)
        if self.config.memory == "episode":
            return self.initial_state()
        return state

    def _inputs(self, observation: np.ndarray, state: MetaA2CState) -> torch.Tensor:
        reward = state.previous_reward if self.config.reward_input else 0.0
        return self.network.encode(observation, state.previous_action, reward)

    @property
    def policy(self) -> nn.Module:
        return self.network

    # -- acting -------------------------------------------------------------------------------------------
    @one_thread()
    @torch.no_grad()
    def action_distribution(self, observation: np.ndarray, state: MetaA2CState) -> tuple[torch.Tensor, float]:
        """Probabilities of the actions and the value estimate, given ``state`` (for analysis and tests)."""
        inputs = self._inputs(observation, state)
        logits, value, _ = self.network(inputs[None], state.memory)
        mask = masks(self.space, observation, self.config.mask_invalid)
        return torch.softmax(masked_logits(logits[0], mask), -1), float(value[0])

    @one_thread()
    @torch.no_grad()
    def _act(self, observation: np.ndarray, state: MetaA2CState, deterministic: bool):
        inputs = self._inputs(observation, state)
        logits, _, memory = self.network(inputs[None], state.memory)
        mask = masks(self.space, observation, self.config.mask_invalid)
        logits = masked_logits(logits[0], mask)
        if deterministic:
            action = int(logits.argmax())
        else:
            action = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator))
        return action, inputs, mask, MetaA2CState(memory, action, state.previous_reward)

    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        """Action and next state (a ``MetaA2CState``; None starts a fresh trial). Before the next call record
        the step's reward: ``state = state.observe(reward)``."""
        action, _, _, state = self._act(observation, state or self.initial_state(), deterministic)
        return action, state

    def _after_step(self, state: MetaA2CState, reward: float, done: bool) -> MetaA2CState:
        state = state.observe(reward)
        return self._episode_end(state) if done else state

    def _begin(self, owner: str) -> np.ndarray:
        """The copies' observations to act on. After a reset (a switch between learn and play, a reload, a fresh env)
        a copy whose episode was unfinished and that starts empty has abandoned it: it counts as ended and no return
        bootstraps across it; one the env put back (a resumed search) continues it. A rollout that ``play``
        interrupted is learned from at once, as it cannot continue from the memory play left."""
        fresh = self._observation is None or self._episode_owner != owner
        observations = self._observations(owner)
        if fresh:
            for index in range(self.num_envs):
                if self.mid_episode[index] and self.space.steps(observations[index]) == 0:
                    rollout = self.rollouts[index]
                    if rollout.dones and not rollout.dones[-1]:
                        rollout.dones[-1] = rollout.cuts[-1] = True
                    self.trial_states[index] = self._episode_end(self.trial_states[index])
                    self.mid_episode[index] = False
        if owner == "learn" and self.rollouts[0].inputs:
            moved = []
            for rollout, state in zip(self.rollouts, self.trial_states, strict=True):
                assert rollout.end_memory is not None, "a rollout with steps holds the memory after them"
                moved.append(not all(map(torch.equal, rollout.end_memory, state.memory)))
            if any(moved):
                self._update()
        return observations

    def _play(self, total_steps: int, callback: StepCallback | None, deterministic: bool) -> MetaA2C:
        """Act without learning; the memory still evolves over the trial (in-context adaptation)."""
        step = 0
        while step < total_steps:
            observations = self._begin("play")
            acted = [self._act(observations[c], self.trial_states[c], deterministic) for c in range(self.num_envs)]
            rewards, dones, infos = self._env_step([action for action, *_ in acted])
            for index, (_, _, _, state) in enumerate(acted):
                self.trial_states[index] = self._after_step(state, rewards[index], dones[index])
                self.mid_episode[index] = not dones[index]
            step += self.num_envs
            if not self._notify_copies(callback, step - self.num_envs, rewards, dones, infos):
                break
        return self

    # -- learning -----------------------------------------------------------------------------------------
    def _learn(self, total_steps: int, callback: StepCallback | None) -> MetaA2C:
        target = self.num_timesteps + total_steps
        while self.num_timesteps < target:
            observations = self._begin("learn")
            if not self.rollouts[0].inputs:
                for rollout, state in zip(self.rollouts, self.trial_states, strict=True):
                    rollout.start_memory = state.memory
            acted = [self._act(observations[c], self.trial_states[c], False) for c in range(self.num_envs)]
            rewards, dones, infos = self._env_step([action for action, *_ in acted])
            for index, (action, inputs, mask, state) in enumerate(acted):
                reward, done = float(rewards[index]), bool(dones[index])
                self.trial_states[index] = self._after_step(state, reward, done)
                self.mid_episode[index] = not done
                rollout = self.rollouts[index]
                rollout.add(inputs, action, mask, reward, done, done and self.config.memory != "rl2")
                rollout.end_memory = self.trial_states[index].memory
            self.num_timesteps += self.num_envs
            if len(self.rollouts[0].inputs) == self.config.n_steps:
                self._update()
            if not self._notify_copies(callback, self.num_timesteps - self.num_envs, rewards, dones, infos):
                break
        return self

    @one_thread()
    def _update(self) -> None:
        """One n-step advantage actor-critic step on the copies' rollouts: each copy's losses, averaged."""
        assert self._observation is not None, "an update follows a step, which leaves the copies' observations"
        terms = [
            self._losses(rollout, state, observation)
            for rollout, state, observation in zip(self.rollouts, self.trial_states, self._observation, strict=True)
        ]
        policy_loss, value_loss, entropy = (torch.stack([term[part] for term in terms]).mean() for part in range(3))
        self._step(policy_loss, value_loss, entropy, torch.cat([term[3] for term in terms]))
        self.rollouts = [Rollout() for _ in range(self.num_envs)]

    def _losses(self, rollout: Rollout, trial_state: MetaA2CState, observation: np.ndarray):
        """Policy loss, value loss, entropy and returns of one rollout, replayed through the LSTM with gradients;
        ``trial_state`` and ``observation`` are where the trial stands after it (to bootstrap from)."""
        cfg = self.config
        memory, step_logits, step_values = rollout.start_memory, [], []
        for i, inputs in enumerate(rollout.inputs):  # replay the rollout through the LSTM, now with gradients
            if i > 0 and rollout.dones[i - 1] and cfg.memory != "rl2":
                memory = self.initial_state().memory
            one_logits, one_value, memory = self.network(inputs[None], memory)
            step_logits.append(one_logits[0])
            step_values.append(one_value[0])
        logits, values = torch.stack(step_logits), torch.stack(step_values)

        with torch.no_grad():  # bootstrap from the value of the next state unless returns stop here
            next_value = 0.0
            if not rollout.cuts[-1]:  # under RL² after an episode end: the next episode's first state
                observation = self.space.observe(()) if rollout.dones[-1] else observation
                inputs = self._inputs(observation, trial_state)
                next_value = float(self.network(inputs[None], trial_state.memory)[1][0])
        returns = torch.tensor(n_step_returns(rollout.rewards, rollout.cuts, cfg.gamma, next_value))
        advantages = returns - values.detach()

        distribution = Categorical(logits=masked_logits(logits, torch.stack(rollout.masks)))
        policy_loss = -(distribution.log_prob(torch.tensor(rollout.actions)) * advantages).mean()
        value_loss = nn.functional.mse_loss(values, returns)
        entropy = distribution.entropy().mean()
        return policy_loss, value_loss, entropy, returns

    def _step(
        self, policy_loss: torch.Tensor, value_loss: torch.Tensor, entropy: torch.Tensor, returns: torch.Tensor
    ) -> None:
        """The optimiser step on A2C's loss, then the metrics."""
        cfg = self.config
        loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self._report(
            {
                "loss": loss.item(),
                "policy_loss": policy_loss.item(),
                "value_loss": value_loss.item(),
                "entropy": entropy.item(),
                "mean_return": float(returns.mean()),
            }
        )

    # -- state --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``trial_state`` and ``rollout`` are the one-copy trial's (copy 0's with one copy, a new trial's with more),
        what a plain env continues from; ``copies`` has every copy's."""
        single = self.num_envs == 1
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "trial_state": dataclasses.asdict(self.trial_state if single else self.initial_state()),
            "rollout": dataclasses.asdict(self.rollout if single else Rollout()),
            "copies": {
                "trial_states": [dataclasses.asdict(state) for state in self.trial_states],
                "rollouts": [dataclasses.asdict(rollout) for rollout in self.rollouts],
                "mid_episode": list(self.mid_episode),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """With one copy a checkpoint's one-copy trial continues (its ``copies`` are unused where the plain-env agents
        of before saved it); with more, its copies' trials if it has as many, else new trials."""
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self._reset_copies()
        copies = state.get("copies")
        fits = copies is not None and len(copies["trial_states"]) == self.num_envs
        if copies is not None and fits and (self.num_envs > 1 or not self._unused(copies)):
            self.trial_states = [read_trial_state(stored) for stored in copies["trial_states"]]
            self.rollouts = [read_rollout(stored) for stored in copies["rollouts"]]
            self.mid_episode = list(copies["mid_episode"])
        elif self.num_envs == 1:
            rollout = read_rollout(state["rollout"])
            self.trial_states, self.rollouts = [read_trial_state(state["trial_state"])], [rollout]
            self.mid_episode = [bool(rollout.dones) and not rollout.dones[-1]]
        read_trial_state(state["trial_state"])  # a damaged one is refused whichever is read

    def _unused(self, copies: dict[str, Any]) -> bool:
        """Whether a checkpoint's copies never acted (a plain-env agent before one path saved them so)."""
        trial, rollout = read_trial_state(copies["trial_states"][0]), read_rollout(copies["rollouts"][0])
        fresh = trial.previous_action == -1 and not any(bool(part.any()) for part in trial.memory)
        return fresh and not rollout.inputs and not copies["mid_episode"][0]
