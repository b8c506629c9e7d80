"""How often an agent that samples all 8 actions (NasGym's) ends an episode with an invalid layer.

Validity depends on the image size only, not on rewards, so the rewards here are a cheap constant
(``FunctionEvaluator``): it runs in seconds and prints the share per image size.

    python benchmarks/invalid_episodes.py --episodes 20000
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import agents
import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.evaluator import FunctionEvaluator


def invalid_share(image_size: int, episodes: int, seed: int) -> float:
    env = gym.make(
        "NAS-v0", evaluator=FunctionEvaluator(lambda network: 0.0, image_size=image_size), image_size=image_size
    )
    agent = agents.make("random", env, mask_invalid=False, seed=seed)
    ended, invalid = 0, 0

    def count(event: dict) -> bool:
        nonlocal ended, invalid
        if event["terminated"]:
            ended += 1
            invalid += not event["info"]["valid"]
        return ended < episodes

    agent.learn(20 * episodes, callback=count)
    return invalid / ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--sizes", default="28,84")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for size in (int(text) for text in args.sizes.split(",")):
        share = invalid_share(size, args.episodes, args.seed)
        print(f"{size:>3} px: {share:.3f} of {args.episodes} uniformly random episodes end with an invalid layer")


if __name__ == "__main__":
    main()
