"""Layer 1, the core: the environments and everything a reward needs (search space, child network, trainer,
evaluators, reward cache, datasets). It never imports ``agents`` or ``nasgym.runners``."""
