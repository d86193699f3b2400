from .figkd_loss import FiGKDLoss, load_class_order

__all__ = ['FiGKDLoss', 'load_class_order']
