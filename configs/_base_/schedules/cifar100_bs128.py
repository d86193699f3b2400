# 200 epochs at a total batch of 128 (8 GPUs x 16), SGD lr 0.1: mmpretrain's
# CIFAR schedule with the changes of its resnet50_8xb16_cifar100 recipe (the
# released CIFAR-100 ResNet-50): weight decay 5e-4, lr x0.2 at epochs 60, 120
# and 160.
_base_ = 'mmpretrain::_base_/schedules/cifar10_bs128.py'

optim_wrapper = dict(optimizer=dict(weight_decay=0.0005))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[60, 120, 160], gamma=0.2)
