"""Layer 3, the runners: the search loop and its run folder, the experiments, plots and the command line.
They import the core and ``agents``; nothing imports them but the ``nasgym`` command."""
