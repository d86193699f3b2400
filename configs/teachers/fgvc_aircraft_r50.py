# ResNet-50 fine-tuned on FGVC-Aircraft: the teacher of
# configs/{figkd,kd,dkd}/fgvc_aircraft_r50_r18.py (no released model).
# mmpretrain's CUB recipe (resnet50_8xb8_cub: ImageNet-21k weights, 448 px,
# SGD + cosine, 100 epochs, total batch 64) with another dataset.
_base_ = [
    '../_base_/models/resnet50_in21k.py',
    '../_base_/datasets/fgvc_aircraft_bs8_448.py',
    '../_base_/schedules/cub_bs64.py',
    '../_base_/teacher_runtime.py',
]

model = dict(head=dict(num_classes=100))

# The distillation configs read epoch_100.pth of this work_dir: keep it
# (or pass --cfg-options model.teacher_ckpt=PATH to them).
work_dir = './work_dirs/teachers/fgvc_aircraft_r50'
