# ResNet_CIFAR-50 trained from scratch on Tiny-ImageNet: the teacher of
# configs/{figkd,kd,dkd}/tiny_imagenet_r50_r18.py (no released model).
# mmpretrain's resnet50_8xb16_cifar100 recipe with the Tiny-ImageNet data.
_base_ = [
    'mmpretrain::_base_/models/resnet50_cifar.py',
    '../_base_/datasets/tiny_imagenet_bs16_64.py',
    '../_base_/schedules/tiny_imagenet_bs128.py',
    '../_base_/teacher_runtime.py',
]

model = dict(head=dict(num_classes=200))

# The distillation configs read epoch_200.pth of this work_dir: keep it
# (or pass --cfg-options model.teacher_ckpt=PATH to them).
work_dir = './work_dirs/teachers/tiny_imagenet_r50'
