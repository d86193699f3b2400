# SGD + cosine, 100 epochs at a total batch of 64 (8 GPUs x 8), as mmpretrain.
_base_ = 'mmpretrain::_base_/schedules/cub_bs64.py'
