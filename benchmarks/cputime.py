"""CPU time for benchmarks that run worker processes: on a machine shared with other work, CPU
seconds say what the wall clock cannot (how much work was done, whoever else ran)."""

import resource


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
