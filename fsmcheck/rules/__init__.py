"""The rule catalogue (``fsmcheck rules``): the uAPI's and the seeds' MUSTs
and SHOULDs, each with the pack tests that can kill a violation of it."""

from .catalogue import CATALOGUE, LEVELS, CatalogueError, Rule, RuleRow, load_catalogue, rule_table, uncovered_musts

__all__ = ["CATALOGUE", "LEVELS", "CatalogueError", "Rule", "RuleRow", "load_catalogue", "rule_table",
           "uncovered_musts"]
