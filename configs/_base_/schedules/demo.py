# The demo's schedule, shared by the students (configs/demo/student.py and
# the distillations): 5 epochs of SGD with Nesterov momentum at batch 64,
# one epoch of linear warm-up, then cosine decay to zero. The teacher keeps
# the same recipe over more epochs (configs/demo/teacher.py).
# Validation (on the test split) runs once, after the last epoch.
# Changing the epochs means changing four numbers: train_cfg.max_epochs and
# val_interval (E), param_scheduler.1.T_max (E - 1) and param_scheduler.1.end
# (E); tools/demo_study.py --epochs does that.
max_epochs = 5

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=0.0,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs,
                 val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
