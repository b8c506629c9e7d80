"""``NAS-ZophLe-v0``: Zoph & Le's (2017) search space, written token by token: per layer a filter height, a filter
width, a number of filters, optionally a stride, then for every earlier layer whether it feeds this one.

``space`` holds the tokens and architectures, ``network`` the child network, ``space_model`` what agents read,
``config`` the keywords and ``env`` the Gymnasium environment; ``search_space`` ties them together as the
``nasgym.core.spaces.SearchSpace`` named ``"zophle"``, through which the rest of nasgym reaches this package.
"""
