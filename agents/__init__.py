"""Faust agents: the only place where topics meet domain functions."""
