# The demo's pair, both mmpretrain ResNet_CIFAR-18 (3x3 stride-1 stem, no max
# pooling: made for 32 px) trained from scratch, differing only in width:
#   teacher: 16-32-64-128 channels, 0.71M parameters, 35M MACs per image
#   student:  8-16-32-64 channels,  0.18M parameters,  9M MACs per image
# Small enough to train both on two CPU cores in minutes (tools/demo_study.py).
# Both heads are sized for the default glyph benchmark (148 classes). The
# teacher's checkpoint comes from configs/demo/teacher.py.
teacher_width, student_width = 16, 8
num_classes = 148


def _classifier(width):
    return dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='ResNet_CIFAR',
            depth=18,
            stem_channels=width,
            base_channels=width,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch',
            # mmpretrain zero-initialises the last BN of every residual
            # block, which suits long ImageNet schedules; over the demo's
            # few epochs from scratch the teacher trained better without
            # (single-seed checks).
            zero_init_residual=False,
            # torch's own initialisation (init_cfg=None here and in the
            # head), not mmpretrain's Kaiming fan-out convolutions and
            # 0.01-std head: with mmpretrain's, the student alone sat at
            # chance (top-1 1.2) for all 4 epochs on seed 0; with torch's it
            # leaves chance within 2 epochs on every seed tried.
            init_cfg=None),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=num_classes,
            in_channels=8 * width,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ),
            init_cfg=None))


model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    teacher_ckpt=None,
    teacher_trainable=False,  # frozen weights and BN statistics
    teacher_norm_eval=True,
    architecture=_classifier(student_width),
    teacher=_classifier(teacher_width))
