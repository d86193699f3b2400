# Teacher Swin-L (384 px, window 12; mmpretrain's swin-large_8xb8_cub-384px)
# -> student ResNet-18: a transformer teacher for a CNN student.
# Teacher and student see the same batch, so experiments with this pair use
# the teacher's 384 px data (configs/_base_/datasets/cub_bs8_384.py).
# The student starts from mmpretrain's ImageNet-1k weights, as in r50_r18.py.
_base_ = './r50_r18.py'

model = dict(
    teacher=dict(
        _delete_=True,
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='SwinTransformer',
            arch='large',
            img_size=384,
            stage_cfgs=dict(block_cfgs=dict(window_size=12)),
            # MMRazor runs a frozen teacher in train mode (only BN layers are
            # put in eval): no stochastic depth, the teacher stays exact.
            drop_path_rate=0.0),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            in_channels=1536,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))))
