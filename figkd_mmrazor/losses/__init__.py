from .figkd_loss import FiGKDLoss

__all__ = ['FiGKDLoss']
