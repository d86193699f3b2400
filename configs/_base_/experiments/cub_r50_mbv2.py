# ResNet-50 -> MobileNetV2 1.0x on CUB-200-2011 at 448 px: the experiment of
# configs/{figkd,kd,dkd}/cub_r50_mbv2.py, which add only their loss. It is
# cub_r50_r18.py (data, schedule, class count, teacher and its checkpoint)
# with a cross-family student backbone (bottleneck ResNet -> inverted
# residuals); the student's head only widens to MobileNetV2's 1280 channels.
# The student alone: configs/baselines/cub_mbv2.py.
# The student starts from mmpretrain's ImageNet-1k weights, as in
# models/mobilenet_v2_in1k.py (a URL default: --cfg-options
# model.architecture.backbone.init_cfg=None turns it off).
_base_ = './cub_r50_r18.py'

model = dict(
    architecture=dict(
        backbone=dict(
            _delete_=True,
            type='MobileNetV2',
            widen_factor=1.0,
            init_cfg=dict(
                type='Pretrained',
                checkpoint='https://download.openmmlab.com/mmclassification/'
                'v0/mobilenet_v2/'
                'mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth',
                prefix='backbone')),
        head=dict(in_channels=1280)))
