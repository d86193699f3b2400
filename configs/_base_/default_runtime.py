_base_ = 'mmpretrain::_base_/default_runtime.py'

# Importing the plugin registers FiGKDLoss / LogitsRecorder / hooks and runs
# its compatibility fixes, so these configs also work with mmpretrain's and
# mim's train scripts.
custom_imports = dict(imports=['figkd_mmrazor'], allow_failed_imports=False)
