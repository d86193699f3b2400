# Classic logit KD (Hinton et al.): MMRazor's KLDivergence, same temperature
# and weight as FiGKD so the two differ only in the frequency bands used.
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(logits=dict(type='Logits')),
    teacher_recorders=dict(logits=dict(type='Logits')),
    distill_losses=dict(
        loss_kd=dict(type='KLDivergence', tau=4.0, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
