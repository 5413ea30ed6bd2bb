"""Publishing: model cards, the leaderboard (build, render, scaling section) and plots, all read from the
typed results and run records."""
