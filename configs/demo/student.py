# Demo baseline: the narrow student of pairs/demo.py alone, cross-entropy
# only, with the schedule and seed of the distilled students
# (configs/demo/{kd,dkd,figkd}.py).
_base_ = [
    '../_base_/datasets/glyphs.py',
    '../_base_/schedules/demo.py',
    '../_base_/demo_runtime.py',
    '../_base_/pairs/demo.py',
]

# The pair's student as a plain mmpretrain model.
model = dict(
    _delete_=True,
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone={{_base_.model.architecture.backbone}},
    neck={{_base_.model.architecture.neck}},
    head={{_base_.model.architecture.head}})

work_dir = './work_dirs/demo/student'
