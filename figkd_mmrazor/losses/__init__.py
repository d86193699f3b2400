from .figkd_loss import FiGKDLoss, load_class_order
from .graph_figkd_loss import GraphFiGKDLoss, graph_band_operator

__all__ = ['FiGKDLoss', 'GraphFiGKDLoss', 'graph_band_operator',
           'load_class_order']
