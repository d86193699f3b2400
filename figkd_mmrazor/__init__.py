"""figkd_mmrazor: frequency-aware logit distillation (FiGKD) for MMRazor.

Importing the package registers everything it adds into MMRazor's registries;
the compatibility fixes run first so that MMRazor imports on today's torch.
"""
from . import compat

compat.apply()

from .hooks import StudentCheckpointHook  # noqa: E402
from .losses import FiGKDLoss  # noqa: E402
from .recorders import LogitsRecorder  # noqa: E402
from .replay import (CachedTeacherDistill, KeyedAugmentDataset,  # noqa
                     KeyedSampler, TeacherCacheHook)
from .version import __version__  # noqa: E402
from .wavelets import dwt_max_level, wavedec, waverec  # noqa: E402

__all__ = ['__version__', 'wavedec', 'waverec', 'dwt_max_level', 'FiGKDLoss',
           'LogitsRecorder', 'StudentCheckpointHook']
