# MobileNetV2 1.0x from mmpretrain's ImageNet-1k weights (the student of
# experiments/cub_r50_mbv2.py, trained alone). Set head.num_classes.
_base_ = 'mmpretrain::_base_/models/mobilenet_v2_1x.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'mobilenet_v2/'
            'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth',
            prefix='backbone')))
