# Teacher ResNet-50 -> student ResNet-18 (mmpretrain ImageClassifiers).
# Experiments set head.num_classes on both and the teacher's checkpoint.
# The student starts from the ImageNet-1k weights of models/resnet18_in1k.py
# (a URL default: --cfg-options model.architecture.backbone.init_cfg=None
# turns it off); that file is a base only to read them from.
_base_ = '../models/resnet18_in1k.py'

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    teacher_ckpt=None,
    teacher_trainable=False,  # frozen weights and BN statistics
    teacher_norm_eval=True,
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='ResNet',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch',
            init_cfg={{_base_.model.backbone.init_cfg}}),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            in_channels=512,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))),
    teacher=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='ResNet',
            depth=50,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            in_channels=2048,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))))
