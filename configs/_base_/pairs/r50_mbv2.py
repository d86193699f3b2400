# Teacher ResNet-50 -> student MobileNetV2 1.0x (mmpretrain ImageClassifiers):
# a cross-family pair (bottleneck ResNet -> inverted residuals).
# Experiments set head.num_classes on both and the teacher's checkpoint.
# The student starts from mmpretrain's ImageNet-1k weights (a URL default:
# --cfg-options model.architecture.backbone.init_cfg=None turns it off).
_base_ = './r50_r18.py'

model = dict(
    architecture=dict(
        _delete_=True,
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(
            type='MobileNetV2',
            widen_factor=1.0,
            init_cfg=dict(
                type='Pretrained',
                checkpoint='https://download.openmmlab.com/mmclassification/'
                'v0/mobilenet_v2/'
                'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth',
                prefix='backbone')),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            in_channels=1280,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))))
