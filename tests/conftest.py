# Import the plugin before anything imports mmrazor: its compatibility layer
# must run first (mmrazor 1.0.0 does not import on torch >= 2.1 without it).
import figkd_mmrazor  # noqa: F401

import os  # noqa: E402
import tempfile  # noqa: E402

# The file digests the teacher cache keeps (replay.fingerprint) go to a
# folder of this session, not the user's ~/.cache; tools started by the
# tests inherit it.
os.environ['XDG_CACHE_HOME'] = tempfile.mkdtemp(prefix='figkd_xdg_')


import pytest  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402


@pytest.fixture(autouse=True)
def _keep_the_default_scope():
    """Each test starts with the default scope it found.

    Building a Runner or calling mmpretrain's ``get_model`` makes a new
    ``DefaultScope`` current for the rest of the process, and a later test's
    ``MODELS.build(dict(type='FiGKDLoss'))`` would then look in mmpretrain's
    registry instead of MMRazor's.
    """
    before = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)
