"""The selection-quality experiment: a grid of cells (representation × selector × budget × seed, plus
baselines and distance quantiles), and the statistics that say whether selection beats random."""
