"""The simulation: a validated Scenario in, outcomes per province per step out.

EGovModel (model.py) steps the agents (agents.py: the central government and provincial leaders) and the
populations of citizens and civil servants (population.py), whose per-agent loops are compiled (kernels.py);
reference.py states the same rules the direct way, for the tests. outcomes.py names the recorded columns.
"""
