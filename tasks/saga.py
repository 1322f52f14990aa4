"""SAGA's evaluation table (protocols.md §3) and Basque minimal pairs: the task factories.

The registry points the families ``ppl``, ``scala``, ``summ``, ``rc`` and ``bl2mp`` here. The
log-likelihood tasks live in :mod:`evalkit.tasks.saga_loglik` (ScaLA-nb's builder in
:mod:`evalkit.tasks.scala_nob`), the oracle-judged generation tasks in
:mod:`evalkit.tasks.saga_gen`; ``evalkit.saga_table`` prints the seven-column table.
"""

from __future__ import annotations

from evalkit.tasks.saga_gen import make_rc_task, make_summ_task
from evalkit.tasks.saga_loglik import make_bl2mp_task, make_ppl_task, make_scala_task

__all__ = ["make_bl2mp_task", "make_ppl_task", "make_rc_task", "make_scala_task",
           "make_summ_task"]
