# ResNet-18 from mmpretrain's ImageNet-1k weights: the students of the 448 px
# recipes trained alone (configs/baselines/); pairs/r50_r18.py reads its
# init_cfg for the distilled student. Set head.num_classes.
_base_ = 'mmpretrain::_base_/models/resnet18.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth',
            prefix='backbone')))
