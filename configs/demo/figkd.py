# FiGKD on the demo: from the demo teacher to the student of pairs/demo.py.
_base_ = [
    '../_base_/experiments/demo.py',
    '../_base_/distill/figkd.py',
]

model = dict(distiller={{_base_.distiller}})
work_dir = './work_dirs/demo/figkd'
