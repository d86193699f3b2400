# Demo teacher: the wide ResNet_CIFAR-18 of pairs/demo.py trained from
# scratch on the glyph benchmark (cross-entropy), with the students' recipe
# (schedules/demo.py) over 6 epochs instead of 5. configs/demo/
# {kd,dkd,figkd}.py distil from its last checkpoint,
# work_dirs/demo/teacher/epoch_6.pth.
_base_ = [
    '../_base_/datasets/glyphs.py',
    '../_base_/schedules/demo.py',
    '../_base_/demo_runtime.py',
    '../_base_/pairs/demo.py',
]

# The pair's teacher as a plain mmpretrain model.
model = dict(
    _delete_=True,
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone={{_base_.model.teacher.backbone}},
    neck={{_base_.model.teacher.neck}},
    head={{_base_.model.teacher.head}})

teacher_epochs = 6
train_cfg = dict(max_epochs=teacher_epochs, val_interval=teacher_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=teacher_epochs - 1, eta_min=0.0,
         by_epoch=True, begin=1, end=teacher_epochs,
         convert_to_iter_based=True),
]

work_dir = './work_dirs/demo/teacher'
