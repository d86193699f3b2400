# CIFAR-stem pair: teacher ResNet_CIFAR-50 (mmpretrain's resnet50_cifar, the
# architecture of its released CIFAR-100 model resnet50_8xb16_cifar100) ->
# student ResNet_CIFAR-18 (resnet18_cifar). Both have the 3x3 stride-1 stem
# without max pooling, for 32-64 px images. No ImageNet weights exist for
# this stem: the student trains from scratch.
# Experiments set head.num_classes on both and the teacher's checkpoint.
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
            type='ResNet_CIFAR',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch'),
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
            type='ResNet_CIFAR',
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
