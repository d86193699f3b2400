# ResNet-50 from ImageNet-21k weights (Alibaba-MIIL, converted by mmpretrain):
# the initialisation of mmpretrain's CUB ResNet-50 (resnet50_8xb8_cub), used
# by the teacher recipes of the other 448 px datasets. Set head.num_classes.
_base_ = 'mmpretrain::_base_/models/resnet50.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'resnet/resnet50_3rdparty-mill_in21k_20220331-faac000b.pth',
            prefix='backbone')))
