# Teacher ResNet-50 -> student ResNet-18 (mmpretrain ImageClassifiers).
# Experiments set head.num_classes on both and the teacher's checkpoint.
# The student starts from mmpretrain's ImageNet-1k weights (a URL default:
# --cfg-options model.architecture.backbone.init_cfg=None turns it off).
model = dict(
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
            init_cfg=dict(
                type='Pretrained',
                checkpoint='https://download.openmmlab.com/mmclassification/'
                'v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth',
                prefix='backbone')),
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
