# Tiny-ImageNet, trained from scratch with the CIFAR-stem ResNets: the
# CIFAR-100 schedule (200 epochs, total batch 128, SGD lr 0.1, weight decay
# 5e-4, lr x0.2 at epochs 60, 120 and 160). Kept as its own file so the two
# can be tuned apart; not tuned for Tiny-ImageNet.
_base_ = './cifar100_bs128.py'
