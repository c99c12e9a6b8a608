# pytester's in-process runs restore sys.modules when they end, and a C extension first imported
# inside such a run cannot be imported again in the same process ("cannot load module more than
# once per process"). ahelm imports these lazily (they cost a run ~0.5 s of start-up), so the
# test process loads them once, up front.
import numpy.fft  # noqa: F401
import scipy.signal  # noqa: F401
import scipy.stats  # noqa: F401

pytest_plugins = ["pytester"]
