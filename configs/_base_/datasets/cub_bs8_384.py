# CUB-200-2011 at 384 px (Resize 510 / crop 384), mmpretrain's recipe for its
# Swin-L CUB model, so that a Swin-L teacher sees its fine-tuning resolution.
# Layout: docs/datasets.md#cub-200-2011
_base_ = 'mmpretrain::_base_/datasets/cub_bs8_384.py'

data_preprocessor = dict(type='ClsDataPreprocessor', _scope_='mmpretrain')
