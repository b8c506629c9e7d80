"""REINFORCE with an LSTM controller (Zoph & Le 2017, "Neural Architecture Search with Reinforcement Learning").

The controller is an LSTM that emits one layer per decision; its input is the embedding of the previous action
(a learned start token at the first decision) and its output a softmax over the valid actions. Per update it
samples m architectures, asks the environment's evaluator for all their rewards in one batch, then steps them
through the environment, which answers each step from the evaluator's memo (so the episode log and the
environment's semantics stay exact). The update is Zoph & Le's policy gradient

    (1/m) sum_k sum_t grad log P(a_t | a_<t) (R_k - b),

with b an exponential moving average of past rewards. ``reward="final"`` (their setting) makes R_k the final
accuracy; with ``reward="per_step"`` each decision gets its discounted reward-to-go.

With a vector env of ``N`` copies the batch's episodes are played ``N`` at a time: a free copy takes the next episode
of the batch, and a copy with none left holds (``nasgym.core.vector_env.HOLD``) until the batch is complete and the
update has sampled the next one. The batch is still evaluated as one before its first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from agents.base import Agent, StepCallback, seeded
from agents.encoding import masked_logits, masks, one_thread
from agents.hyperparameters import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, validate
from agents.zophle_controller import CONTROLLERS, ActionController
from nasgym.core.vector_env import HOLD


@dataclass
class ReinforceConfig:
    architectures_per_update: PositiveInt = 8
    """m: architectures sampled per policy-gradient update, evaluated as one batch."""
    hidden_size: PositiveInt = 35
    """LSTM units per layer (Zoph & Le: 35)."""
    num_layers: PositiveInt = 2
    """LSTM layers (Zoph & Le: 2)."""
    learning_rate: PositiveFloat = 6e-4
    """Adam's learning rate (Zoph & Le: 0.0006)."""
    init_range: NonNegativeFloat = 0.08
    """Every weight starts uniform in [-init_range, init_range] (Zoph & Le)."""
    baseline_decay: Fraction = 0.95
    """Moving-average baseline, per episode: b <- decay * b + (1 - decay) * R. The first batch's mean starts it."""
    gamma: Fraction = 1.0
    """Discount of rewards within an episode (only matters with reward='per_step')."""
    entropy_coef: NonNegativeFloat = 0.0
    """Weight of an entropy bonus (none in Zoph & Le)."""
    mask_invalid: bool = True
    """Choose only among valid actions; False samples all 8 and lets the environment end invalid episodes."""
    seed: Seed = 0
    """Seeds the initial weights and the sampling."""

    def __post_init__(self) -> None:
        validate(self)


class Controller(ActionController):
    """LSTM over the previous actions -> logits of the next action. Input token ``n_actions`` is the start."""

    def __init__(self, n_actions: int, hidden_size: int, num_layers: int, init_range: float):
        super().__init__()
        self.start = n_actions
        self.embedding = nn.Embedding(n_actions + 1, hidden_size)  # the actions and the start token
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, n_actions)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -init_range, init_range)

    def forward(self, previous_actions: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``previous_actions`` (batch, time) -> logits (batch, time, n_actions) and the LSTM state."""
        output, state = self.lstm(self.embedding(previous_actions), state)
        return self.head(output), state


class Reinforce(Agent):
    name = "reinforce"
    Config = ReinforceConfig

    def __init__(self, env, config: ReinforceConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        cfg = self.config
        with seeded(cfg.seed):  # a space with a controller of its own (Zoph & Le's) gets it, others the chain's
            controller = CONTROLLERS.get(self.space.name)
            self.controller: ActionController
            if controller is not None:
                self.controller = controller(self.space, cfg.hidden_size, cfg.num_layers, cfg.init_range)
            else:
                self.controller = Controller(self.space.n_actions, cfg.hidden_size, cfg.num_layers, cfg.init_range)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=cfg.learning_rate)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.baseline: float | None = None
        self._batch: list[list[int]] | None = None  # the m sampled architectures (action lists) being played
        self._batch_evaluated = False  # this process already asked the evaluator for the batch
        self._reset_copies()

    def _reset_copies(self) -> None:
        """Rewards so far per episode of the batch, the episode each copy plays (-1: none), the next to hand out."""
        self._member_rewards: list[list[float]] = []
        self._assigned = [-1] * self.num_envs
        self._next_member = 0

    @property
    def policy(self) -> nn.Module:
        return self.controller

    def reset_trial(self) -> None:
        """Drop the unfinished batch: its rewards belong to the last trial's dataset."""
        super().reset_trial()
        self._batch = None
        self._reset_copies()

    # -- acting -------------------------------------------------------------------------------------------
    def _choose(self, logits: torch.Tensor, mask: torch.Tensor, deterministic: bool) -> torch.Tensor:
        logits = masked_logits(logits, mask)
        if deterministic:
            return logits.argmax(-1)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(-1)

    @one_thread()
    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        """The controller's choice after the actions ``observation`` records (recomputed from them; no state)."""
        previous = torch.tensor([self.controller.start, *self.space.actions(observation)])
        with torch.no_grad():
            logits, _ = self.controller(previous[None])
        allowed = masks(self.space, observation, self.config.mask_invalid)
        return int(self._choose(logits[0, -1], allowed, deterministic)), None

    @one_thread()
    @torch.no_grad()
    def _sample_architectures(self) -> list[list[int]]:
        """m architectures, sampled decision by decision in parallel."""
        episodes: list[list[int]] = [[] for _ in range(self.config.architectures_per_update)]
        previous = torch.full((len(episodes), 1), self.controller.start)
        state = None
        while not all(self.space.done(actions) for actions in episodes):
            logits, state = self.controller(previous, state)
            observations = np.stack([self.space.observe(actions) for actions in episodes])
            allowed = masks(self.space, observations, self.config.mask_invalid)
            chosen = self._choose(logits[:, -1], allowed, deterministic=False)
            for actions, action in zip(episodes, chosen.tolist(), strict=True):
                if not self.space.done(actions):
                    actions.append(action)
            previous = chosen[:, None]
        return episodes

    def _evaluate_batch(self) -> None:
        """Ask the environment for every reward the batch's unfinished episodes will need, as one batch."""
        self._prefetch(self._unfinished())
        self._batch_evaluated = True

    def _unfinished(self) -> list[list[int]]:
        """The episodes of the batch not played to their end."""
        pairs = zip(self._batch or [], self._member_rewards, strict=False)
        return [actions for actions, rewards in pairs if len(rewards) < len(actions)]

    # -- learning -----------------------------------------------------------------------------------------
    def _learn(self, total_steps: int, callback: StepCallback | None) -> Reinforce:
        target = self.num_timesteps + total_steps
        while self.num_timesteps < target:
            if self._batch is None:
                self._batch, self._batch_evaluated = self._sample_architectures(), False
                self._reset_copies()
                self._member_rewards = [[] for _ in self._batch]
            if not self._batch_evaluated:
                self._evaluate_batch()
            self._check_copies(self._observations("learn"))
            for copy in range(self.num_envs):
                if self._assigned[copy] < 0 and self._next_member < len(self._batch):
                    self._assigned[copy], self._next_member = self._next_member, self._next_member + 1
            playing = list(self._assigned)
            actions = [HOLD if k < 0 else self._batch[k][len(self._member_rewards[k])] for k in playing]
            rewards, dones, infos = self._env_step(actions)
            events = []
            for copy, k in enumerate(playing):
                if k < 0:
                    continue
                self._member_rewards[k].append(float(rewards[copy]))
                self.num_timesteps += 1
                if bool(dones[copy]) != (len(self._member_rewards[k]) == len(self._batch[k])):
                    raise RuntimeError(
                        f"the environment ended episode {self._batch[k]} after {len(self._member_rewards[k])} steps"
                    )
                if dones[copy]:
                    self._assigned[copy] = -1
                events.append((self.num_timesteps, float(rewards[copy]), bool(dones[copy]), infos[copy], copy))
            if not self._unfinished():
                self._update()
                self._batch = None
            if not all(self._notify(callback, *event) for event in events):
                break
        return self

    def _check_copies(self, observations: np.ndarray) -> None:
        """Each copy must stand where its episode of the batch left off. After a reset that did not put an
        unfinished episode back (a fresh env), that episode starts over."""
        batch = self._batch
        assert batch is not None, "checked while a batch is being played"
        for copy, k in enumerate(self._assigned):
            actions = list(self.space.actions(observations[copy]))
            if k < 0 or actions == batch[k][: len(self._member_rewards[k])]:
                continue
            if actions:
                raise RuntimeError(f"copy {copy} stands at {actions}, not at the start of {batch[k]}")
            self._member_rewards[k] = []

    @one_thread()
    def _update(self) -> None:
        """One policy-gradient step on the finished batch, then the baseline moves towards its rewards."""
        cfg, batch = self.config, self._batch
        assert batch is not None, "an update learns from the batch just played"
        m, steps = len(batch), max(len(actions) for actions in batch)
        previous = torch.full((m, steps), self.controller.start)
        taken = torch.zeros((m, steps), dtype=torch.long)
        returns = torch.zeros((m, steps))
        observations = np.stack(
            [np.stack([self.space.observe(actions[:t]) for t in range(steps)]) for actions in batch]
        )
        for k, (actions, rewards) in enumerate(zip(batch, self._member_rewards, strict=True)):
            taken[k, : len(actions)] = torch.tensor(actions)
            previous[k, 1 : len(actions)] = torch.tensor(actions[:-1], dtype=torch.long)
            reward_to_go = 0.0
            for t in reversed(range(len(actions))):
                reward_to_go = rewards[t] + cfg.gamma * reward_to_go
                returns[k, t] = reward_to_go
        lengths = torch.tensor([len(actions) for actions in batch])
        valid = torch.arange(steps)[None, :] < lengths[:, None]
        episode_returns = returns[:, 0]
        if self.baseline is None:
            self.baseline = float(episode_returns.mean())
        advantages = (returns - self.baseline) * valid

        logits, _ = self.controller(previous)
        allowed = masks(self.space, observations, cfg.mask_invalid)
        distribution = Categorical(logits=masked_logits(logits, allowed))
        log_probs = distribution.log_prob(taken)
        entropy = (distribution.entropy() * valid).sum() / valid.sum()
        policy_loss = -(log_probs * advantages).sum() / m
        loss = policy_loss - cfg.entropy_coef * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

        for episode_return in episode_returns.tolist():
            self.baseline = cfg.baseline_decay * self.baseline + (1 - cfg.baseline_decay) * episode_return
        self._report(
            {
                "policy_loss": policy_loss.item(),
                "entropy": entropy.item(),
                "baseline": self.baseline,
                "batch_reward": float(episode_returns.mean()),
                "batch_best_reward": float(episode_returns.max()),
            }
        )

    # -- state --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``batch_rewards`` are the rewards of the batch's episodes finished in order from its first (all of them
        with one copy), what a run with another number of copies continues from."""
        finished = []
        for actions, rewards in zip(self._batch or [], self._member_rewards, strict=False):
            if len(rewards) < len(actions):
                break
            finished.append(list(rewards))
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "batch": self._batch,
            "batch_rewards": finished,
            "copies": {
                "member_rewards": self._member_rewards,
                "assigned": list(self._assigned),
                "next_member": self._next_member,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        self._batch, self._batch_evaluated = state["batch"], False
        self._reset_copies()
        copies = state.get("copies")
        if self._batch is not None:
            if copies is not None and len(copies["assigned"]) == self.num_envs and copies["member_rewards"]:
                self._member_rewards = [list(rewards) for rewards in copies["member_rewards"]]
                self._assigned, self._next_member = list(copies["assigned"]), int(copies["next_member"])
            else:  # saved with another number of copies: the finished episodes count, the others start over
                done = [list(rewards) for rewards in state["batch_rewards"]]
                self._member_rewards = done + [[] for _ in self._batch[len(done) :]]
                self._next_member = len(done)
        if not all(self._playable(actions) for actions in self._unfinished()):
            self.reset_trial()  # loaded into an environment with smaller images: the batch cannot be played

    def _playable(self, actions: list[int]) -> bool:
        """Whether this environment ends the episode exactly after ``actions``, as the batch was sampled. An unmasked
        agent's episode may end with an invalid layer, so only the layers before it must be valid."""
        if self.config.mask_invalid:
            return self.space.valid(actions)
        return self.space.valid(actions[:-1]) and self.space.done(actions)
