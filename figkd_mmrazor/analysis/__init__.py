"""What the analysis tools compute, importable (``tools/analysis/*.py`` are
thin command lines over these modules):

- :mod:`.logit_spectrum`: wavelet band energies of logits along the class
  axis, and the teacher-student agreement per band;
- :mod:`.class_order`: a class order that puts similar classes next to each
  other, from a classifier's weights or its confusion;
- :mod:`.classifier_logits`: build the teacher or student of a config from a
  checkpoint and collect its logits on a split;
- :mod:`.paired`: mean +- std over seeds and the paired difference to a
  reference with its t-interval;
- :mod:`.comparison`: the runs of a comparison of recipes over seeds (plan,
  reuse, train commands, results) and its report.

Nothing here is imported by ``import figkd_mmrazor``: configs do not need it.
"""
