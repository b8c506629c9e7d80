"""Look-up benchmarks: NAS-v0's rewards as tables of real trainings with learning curves (``reward_source='table'``).

``table``: the file format and the in-memory table; ``plan``: which networks a table holds; ``build``: training them
(``nasgym table build``); ``source``: the environment's look-ups.
"""

TABLE_IMAGE_SIZE = 16
"""The image side of the shipped tables: at 16 px a network of depth 3-4 trains 12 epochs in about 3.5 s on a 2-core
CPU (8.7 s at 28 px), which lets every network up to depth 4 fit the build budget."""
