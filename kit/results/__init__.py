"""Stage 4, results: evaluation, plots, reports and the helpers behind the notebooks."""
