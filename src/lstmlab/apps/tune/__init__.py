"""``lstmlab tune``: hyperparameter search over ``lstmlab train`` with Optuna (the ``tune`` extra).

space.py (what is searched), objective.py (what a trial runs), study.py (storage, pruner, workers),
report.py (best trial, table, importances, plots), command.py (the command line).
"""
