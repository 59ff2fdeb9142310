"""``fsmcheck mutate``'s library, as the command imports it: see :mod:`fsmcheck.mutation`."""

from .mutation import ORDER_FILE, MutantResult, all_mutants, default_cache_dir, kill_order, order_key, run_pack, score

__all__ = ["MutantResult", "all_mutants", "run_pack", "score", "default_cache_dir", "order_key",
           "kill_order", "ORDER_FILE"]
