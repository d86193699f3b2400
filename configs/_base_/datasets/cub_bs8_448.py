# CUB-200-2011 at 448 px, mmpretrain's recipe; layout: docs/datasets.md
_base_ = 'mmpretrain::_base_/datasets/cub_bs8_448.py'

data_preprocessor = dict(type='ClsDataPreprocessor', _scope_='mmpretrain')
